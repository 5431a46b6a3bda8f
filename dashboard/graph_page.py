"""The Graph page: an augmentation graph to play with (work in progress)."""

from __future__ import annotations

import streamlit as st

st.title("Graph")
st.info("The interactive augmentation graph is being built.")
