"""Flurry's engine: warehouse adapters, training, explanation and deployment. Never imports streamlit."""
