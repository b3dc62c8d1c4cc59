"""Reusable Streamlit widgets, figure builders, cached backend calls and session-state keys."""
