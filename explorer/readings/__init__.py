"""What the dashboard's pages and the notebooks draw: figures, tables and sentences, computed
from runs and records, never from Streamlit.

- :mod:`.figures`, :mod:`.graph_figures`: Plotly figures.
- :mod:`.overview`: one summary row per run; :mod:`.run_tables`: a run's numbers as tables.
- :mod:`.spectrum`: what may be said about a spectrum; :mod:`.spectrum_table`: its table.
- :mod:`.gallery`: images for people to look at (pairs, thumbnails, neighbours).
"""
