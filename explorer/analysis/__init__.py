"""What a trained encoder's features say: metrics, probes, layouts and the theorem's reading.

- :mod:`.metrics`: representation metrics of feature matrices (pure functions).
- :mod:`.probes`: feature extraction, kNN and linear probes; :mod:`.probe_run` probes a run.
- :mod:`.projection`: 2-D layouts (PCA, UMAP) aligned across checkpoints.
- :mod:`.sample`: the fixed evaluation sample of a run.
- :mod:`.class_components`: do the classes behave as components of the graph?
- :mod:`.theorem`: a ``shapes`` network against the provable optimum of its own graph.
- :mod:`.checkpoint`: one checkpoint analysed; :mod:`.run`: ``explorer analyze RUN_DIR``.

Records are written through :mod:`explorer.rundir`; the math of finite graphs is
:mod:`explorer.graphs`'.
"""
