"""Finite augmentation graphs and the paper's theory on them (HaoChen et al., 2021, Section 3).

- :mod:`.spectral`: W, Ā = D^{-1/2} W D^{-1/2}, eigenpairs, spectral clustering, the exact
  population loss, the optimum f* = D^{-1/2} V Γ^{1/2} and the optimum in a ball.
- :mod:`.shapes`: the exact graph of the ``shapes`` dataset, dense; :mod:`.kronecker`: the same
  graph at any scale, matrix-free.
- :mod:`.clusters`: small graphs to play with (clusters joined by weak edges).
- :mod:`.table_training`: a free table f trained on the mini-batch loss of a graph.
- :mod:`.guarantee`: α, the label mass and the bound 8α/λ + 2α; :mod:`.downstream_error`:
  the paper's E(f) (a min over heads) bracketed.
- :mod:`.class_change_curve`, :mod:`.grid_reading`: the Graph page's readings of the
  ``shapes`` graph as ``class_change_p`` grows and at every scale.

Pure math: nothing here reads a run.
"""
