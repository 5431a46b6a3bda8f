"""The Streamlit dashboard's pages (``streamlit run app.py``). Only this folder and app.py import
Streamlit; every computation is a call into the ``explorer`` package."""
