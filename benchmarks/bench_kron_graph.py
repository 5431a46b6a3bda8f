"""What the matrix-free exact ``shapes`` graph costs against its node count (issue 20).

For sub-grids from the default one (1,080 tuples, 840 images) to the whole grid (64,800 tuples,
46,800 images), with the default kernel (crop 0.5, rotation 0.5, colour 0.8, class change
``--class-change-p``), :mod:`explorer.graphs.kronecker` is timed on:

- build: render every tuple and merge equal images, the sparse class change, the degrees (a cold
  build: the node cache is cleared first);
- W·F: one product with a (n, 128) table (what the population loss and E_w[f fᵀ] need);
- top-k: the k largest eigenpairs of Ā by LOBPCG on the operator, k = 7 and k = 128, with the
  operator columns it took (matvecs);
- page: the Graph page's whole reading of the sub-grid
  (:func:`explorer.graphs.grid_reading.grid_reading`:
  graph, top 16 eigenpairs, clustering, probe, α and E(f*); uniform natural data only).

Peak memory is tracemalloc's peak over each step (NumPy's buffers included), in MB. Natural
data: uniform over the sub-grid (``--natural uniform``, the default), or a random 6000/64800 of
its tuples (``--natural train``; the whole grid's actual training split of 6,000 tuples), as a
``shapes`` run with ``augment=graph`` is scored. Eigensolver: ``--method`` (auto: the
support's Gram matrix, exact, when the natural data hold at most 8,000 tuples, else LOBPCG).
Threads: ``--threads`` (default 2) limits the BLAS. Prints a Markdown table.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_kron_graph.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

def measured(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, tracemalloc peak MB) of one call."""
    tracemalloc.reset_peak()
    start_memory = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    return result, seconds, (tracemalloc.get_traced_memory()[1] - start_memory) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="two small sub-grids and the whole grid without k = 128 (< 30 s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--natural", choices=("uniform", "train"), default="uniform")
    parser.add_argument("--class-change-p", type=float, default=0.0)
    parser.add_argument("--d", type=int, default=128, help="columns of the W·F product")
    parser.add_argument("--method", choices=("auto", "gram", "lobpcg"), default="auto",
                        help="eigensolver (auto: the support's Gram matrix when the natural "
                             "data hold at most 8,000 tuples, else LOBPCG; dense when small)")
    args = parser.parse_args()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(args.threads))

    import numpy as np

    from explorer.data.shapes import SHAPES_GRID, ShapesKernel, grid_values, split_factors
    from explorer.graphs.grid_reading import GRIDS, grid_reading  # the Graph page's sub-grids
    from explorer.graphs.kronecker import image_nodes, kron_graph

    sizes = [0, 1, len(GRIDS) - 1] if args.quick else range(len(GRIDS))
    rows = []
    tracemalloc.start()
    for index in sizes:
        label, subgrid = GRIDS[index]
        natural = None
        if args.natural == "train":
            if subgrid is None:
                natural = split_factors(SHAPES_GRID, "train", 0, 6000)
            else:
                tuples = ShapesKernel(grid_values(SHAPES_GRID, subgrid)).tuples()
                size = max(60, round(len(tuples) * 6000 / 64800))
                natural = tuples[np.random.default_rng(0).choice(len(tuples), size, False)]
        image_nodes.cache_clear()
        graph, build_s, build_mb = measured(lambda s=subgrid, x=natural: kron_graph(
            subgrid=s, natural=x, class_change_p=args.class_change_p))
        F = np.random.default_rng(0).standard_normal((graph.num_nodes, args.d))
        _, product_s, product_mb = measured(lambda g=graph, F=F: g.weights_product(F))
        del F
        row = {"sub-grid": label, "tuples": graph.num_tuples, "nodes": graph.num_nodes,
               "build s": build_s, "build MB": build_mb, "W·F s": product_s,
               "W·F MB": product_mb}
        for k in (7, 128):
            if args.quick and k == 128 and graph.num_nodes > 1000:
                row[f"top-{k} s"] = row[f"top-{k} MB"] = row[f"top-{k} matvecs"] = None
                continue
            graph.matvecs[0] = 0
            (gammas, _), eig_s, eig_mb = measured(
                lambda g=graph, k=k: g.top_eigenpairs(k, method=args.method))
            row[f"top-{k} s"], row[f"top-{k} MB"] = eig_s, eig_mb
            row[f"top-{k} matvecs"] = graph.matvecs[0]
            row[f"γ_{k}"] = float(gammas[-1])
        if args.natural == "uniform":  # the Graph page's reading of this sub-grid, end to end
            _, row["page s"], row["page MB"] = measured(lambda i=index: grid_reading(
                i, 0.5, 0.5, 0.8, args.class_change_p))
        rows.append(row)
        print(f"# {label}: {row}", file=sys.stderr, flush=True)
    tracemalloc.stop()

    columns = ["sub-grid", "tuples", "nodes", "build s", "build MB", "W·F s", "W·F MB",
               "top-7 s", "top-7 MB", "top-7 matvecs", "top-128 s", "top-128 MB",
               "top-128 matvecs", "γ_128", "page s", "page MB"]
    print(f"natural data: {args.natural}; class_change_p = {args.class_change_p}; "
          f"d = {args.d}; eigensolver {args.method}; threads = {args.threads}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if value is None:
                cells.append("–")
            elif isinstance(value, float):
                cells.append(f"{value:.4g}" if column.startswith("γ") else f"{value:.2f}"
                             if value < 100 else f"{value:.0f}")
            elif isinstance(value, int):
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
