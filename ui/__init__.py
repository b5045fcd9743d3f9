"""Streamlit-side helpers shared by the pages (the engine imports no Streamlit)."""
