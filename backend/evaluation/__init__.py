"""Judging a trained model: decision thresholds, holdout views, segments, SHAP summaries and the words for them.

Computed where the model is trained (the local worker and the Snowflake procedure alike) and stored with the
model version as typed records, so pages only draw.
"""
