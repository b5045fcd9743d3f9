"""The latency floor for `python -m engine bench browser`: the most trivial Streamlit page with a
chart (one slider, a 1000-point Plotly scatter). Not part of the app."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

value = st.slider("Value", 0, 100, 50, key="trivial")
points = np.random.default_rng(value).normal(size=(1000, 2))
st.plotly_chart(go.Figure(go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers")))
