"""What each interaction of the Graph page costs (issue 12: at most 1 s on 2 CPU cores for
graphs up to 2,000 nodes), measured on the package calls the page makes, without Streamlit.

For each graph (the page's default, 3 clusters of 40; the shapes graph, 840 nodes; 8 clusters of
250 = 2,000 nodes, the largest the page builds):

- "move a slider": build the graph and summarise it (spectrum, count before the largest gap,
  top-k eigenvectors, spectral clustering ARI, linear probe): what the page recomputes when a
  slider moves. On shapes two sliders differ: crop, rotation or colour builds the
  class-change family (two exact graphs,
  :func:`explorer.graphs.class_change_curve.class_change_family`), class-change p only sums its
  three matrices; both then read α, E(f*) and the bounds;
- "degradation curve": the sweep, recomputed only when something other than the swept value
  changes (cached by the page per structure; above 400 nodes swept in a thread beside the page,
  which answers without it and draws the curve when it arrives). On shapes it is the guarantee
  curve, 43 values of class-change p (:func:`explorer.graphs.class_change_curve.guarantee_curve`);
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
from functools import partial
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

    from explorer.graphs import class_change_curve as shapes_lab
    from explorer.graphs import clusters as graph_lab

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    shapes_lab.class_change_family()  # render the shapes once (the page's server does it once too)
    print(
        f"Graph page interactions, best of {args.repeat}, {args.threads} threads "
        "(goal: <= 1 s each)"
    )
    for name, sizes in [
        ("3 clusters x 40 (default)", (40,) * 3),
        ("8 clusters x 250 = 2,000 nodes", (250,) * 8),
    ]:
        build = partial(cluster, sizes)
        measure(
            name,
            build(0.01),
            {"move a slider": lambda build=build: graph_lab.summarize(build(0.01))},
            lambda build=build: graph_lab.degradation_curve(build, graph_lab.CLUSTER_SWEEP),
            len(graph_lab.CLUSTER_SWEEP),
            args.repeat,
        )
    family = shapes_lab.class_change_family()
    measure(
        "shapes, 840 nodes, class-change p 0.7",
        family.graph(0.7),
        {
            "move crop, rotation or colour": lambda: shapes_reading(
                shapes_lab.class_change_family(0.5, 0.5, 0.8), 0.7
            ),
            "move class-change p": lambda: shapes_reading(family, 0.7),
        },
        lambda: shapes_lab.guarantee_curve(family),
        len(shapes_lab.CLASS_CHANGE_SWEEP),
        args.repeat,
    )


def cluster(sizes: tuple[int, ...], between: float) -> object:
    """The page's cluster graph: within weight 1, 10 augmentations inside the cluster."""
    from explorer.graphs import clusters as graph_lab

    return graph_lab.cluster_graph(sizes, 1.0, between, degree=10)


def shapes_reading(family: object, class_change_p: float) -> object:
    """What the page computes for a shapes graph: the graph, its summary and its guarantee."""
    from explorer.graphs import class_change_curve as shapes_lab
    from explorer.graphs import clusters as graph_lab

    lab = family.graph(class_change_p)
    summary = graph_lab.summarize(lab)
    return shapes_lab.guarantee_point(
        family, class_change_p, summary.gammas, summary.vectors, lab.weights
    )


def measure(
    name: str,
    lab: object,
    sliders: dict[str, Callable[[], object]],
    curve_work: Callable[[], object],
    curve_graphs: int,
    repeat: int,
) -> None:
    """Print what each interaction costs on the graph ``lab``."""
    from explorer.graphs.table_training import TableTrainer

    moved = " | ".join(f"{what} {best_of(repeat, work):.2f} s" for what, work in sliders.items())
    curve = best_of(1, curve_work)
    setup = best_of(repeat, lambda: TableTrainer(lab.weights, lab.k, 10.0))
    trainer = TableTrainer(lab.weights, lab.k, 1.0)
    ball = best_of(1, trainer.reachable)
    trainer.run(100)  # warm up torch
    tick = best_of(repeat, lambda: trainer.run(100))
    print(
        f"  {name}: {moved} | degradation curve ({curve_graphs} graphs) "
        f"{curve:.2f} s | press Train {setup:.2f} s + ball optimum at mu=1 {ball:.2f} s "
        f"(binds: {trainer.reachable().binds}) | one training tick (100 steps + exact score) "
        f"{tick:.2f} s"
    )


if __name__ == "__main__":
    main()
