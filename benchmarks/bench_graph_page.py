"""What each interaction of the Graph page costs (issue 12: at most 1 s on 2 CPU cores for
graphs up to 2,000 nodes), measured on the package calls the page makes, without Streamlit.

For each graph (the page's default, 3 clusters of 40; the shapes graph, 840 nodes; 8 clusters of
250 = 2,000 nodes, the largest the page builds):

- "move a slider": build the graph and summarise it (spectrum, count near 1, top-k eigenvectors,
  spectral clustering ARI, linear probe): what the page recomputes when a slider moves;
- "degradation curve": the sweep, recomputed only when something other than the swept value
  changes (cached by the page per structure; above 400 nodes swept in a thread beside the page,
  which answers without it and draws the curve when it arrives);
- "press Train": the table's set-up (its top-d eigenpairs) and the ball-constrained optimum
  (solved once per training, only when mu cuts the optimum off);
- "one training tick": a chunk of 100 steps and the exact scoring of the table.

Each figure is the best of ``--repeat`` runs, wall seconds. Chart drawing and the browser are
not included (the browser test prints page timings). Figures are meaningful only on a quiet
machine; ``--threads`` (default 2) limits torch and the BLAS under NumPy.

    .venv/bin/python benchmarks/bench_graph_page.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)
    import torch
    from threadpoolctl import threadpool_limits

    from explorer import graph_lab

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    graph_lab.shapes_lab_graph()  # render the shapes once (the page's server does it once too)
    print(
        f"Graph page interactions, best of {args.repeat}, {args.threads} threads "
        "(goal: <= 1 s each)"
    )
    measure(
        "3 clusters x 40 (default)",
        lambda b: graph_lab.cluster_graph((40,) * 3, 1.0, b, degree=10),
        0.01,
        graph_lab.CLUSTER_SWEEP,
        args.repeat,
    )
    measure(
        "shapes, 840 nodes",
        lambda p: graph_lab.shapes_lab_graph(shape_p=p),
        0.05,
        graph_lab.SHAPE_SWEEP,
        args.repeat,
    )
    measure(
        "8 clusters x 250 = 2,000 nodes",
        lambda b: graph_lab.cluster_graph((250,) * 8, 1.0, b, degree=10),
        0.01,
        graph_lab.CLUSTER_SWEEP,
        args.repeat,
    )


def measure(
    name: str, build: Callable[[float], object], value: float, sweep: tuple[float, ...], repeat: int
) -> None:
    """Print what each interaction costs on the graph ``build(value)``."""
    from explorer import graph_lab
    from explorer.graph_training import TableTrainer

    lab = build(value)
    slider = best_of(repeat, lambda: graph_lab.summarize(build(value)))
    curve = best_of(1, lambda: graph_lab.degradation_curve(build, sweep))
    setup = best_of(repeat, lambda: TableTrainer(lab.weights, lab.k, 10.0))
    trainer = TableTrainer(lab.weights, lab.k, 1.0)
    ball = best_of(1, trainer.reachable)
    trainer.run(100)  # warm up torch
    tick = best_of(repeat, lambda: trainer.run(100))
    print(
        f"  {name}: move a slider {slider:.2f} s | degradation curve ({len(sweep)} graphs) "
        f"{curve:.2f} s | press Train {setup:.2f} s + ball optimum at mu=1 {ball:.2f} s "
        f"(binds: {trainer.reachable().binds}) | one training tick (100 steps + exact score) "
        f"{tick:.2f} s"
    )


if __name__ == "__main__":
    main()
