"""The Streamlit dashboard (``explorer app``): ``app.py`` routes to one module per page. Only this
package imports Streamlit; every computation is a call into the ``explorer`` package, which never
imports this one (data flows one way)."""
