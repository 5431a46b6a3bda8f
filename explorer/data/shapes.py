"""``shapes``: a synthetic dataset rendered from a finite grid of generating factors.

Every image is a pure function of one factor tuple
``(shape, position, scale, rotation, fg_color, bg_color)`` of indices into a :class:`ShapesGrid`.
The class is the shape; the other five factors are nuisances drawn independently of it, so raw
pixels are a poor linear representation (foreground and background colours swap which pixels are
bright, positions move the shape) while the class stays recognisable under crops and colour
changes. Because the grid is finite and public, the exact augmentation graph of HaoChen et al.
(2021, Sec. 3) can be built over it: nodes are factor tuples, and an augmentation moves a node
along its nuisance factors.

Splits: the grid's *scenes* (a factor tuple without its shape and rotation: position, scale and
colours) are partitioned once, 75% for train and 25% for test, with a generator seeded by
``seed``, and every class uses the same partition; each split then samples factor tuples of every
class from its own scenes. So no test image also appears in train (circles and rings look the
same at every rotation, which is why the partition ignores rotation), every held-out scene is
held out for every class, and a classifier that sees only the scene is at chance (1/6) on the
test split, not below it. Another seed gives other images.

``shapes-subgrid`` is the same renderer on :data:`SUBGRID` (1,080 factor tuples, 840 distinct
images): small enough that the exact augmentation graph of training is a dense matrix
(:mod:`explorer.graphs.shapes`). Its splits hold *every* tuple of their scenes (810 train, 270
test).

:class:`ShapesKernel` is the augmentation of that graph: it resamples nuisance factors, so views
drawn from it (``augment=graph``, :class:`explorer.views.GraphViews`) make the exact graph the
population augmentation graph of training (HaoChen et al. 2021, Section 3.1).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from explorer.data.base import (
    DatasetRequest,
    ImageDataset,
    fit_to_request,
    limit_indices,
    register_dataset,
    stratified_indices,
)

SHAPE_KINDS = ("circle", "square", "triangle", "cross", "ring", "star")
#: Each shape's look-alike (circle and ring, square and cross, triangle and star), by index.
LOOKALIKE = (4, 3, 5, 1, 0, 2)
#: The shapes whose detail a small view can lose (ring: its hole closes; cross: its arms fill in;
#: star: its points fill in), drawn as their look-alike where the image is ambiguous
#: (:class:`ShapesKernel`); the simple shapes never change.
DETAILED = ("cross", "ring", "star")
#: The largest ``class_change_p``: at 1 the most ambiguous views of a ring would never be rings.
MAX_CLASS_CHANGE_P = 0.9

#: Side of the low-resolution grid on which ambiguity is measured (a 32 px image seen as 8 x 8).
AMBIGUITY_RESOLUTION = 8
SPLIT_SIZES = {"train": 6000, "test": 2000}
TRAIN_SCENE_FRACTION = 0.75

# How far each shape reaches from its centre, in units of its scale (the square's corner is the
# farthest point); ShapesGrid checks that no shape is ever cut off by the image border.
_REACH = 0.75 * math.sqrt(2.0)


def _regular_star(points: int, inner: float) -> np.ndarray:
    """Vertices (2*points, 2) of a star with outer radius 1, first point straight up."""
    angles = np.pi / 2 + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), -radii * np.sin(angles)], axis=1)


def _inside_polygon(u: np.ndarray, v: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd test: boolean mask of the points (u, v) inside the polygon (works if non-convex)."""
    inside = np.zeros(u.shape, dtype=bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        if y1 == y2:
            continue  # a horizontal edge is never crossed by a horizontal ray
        crosses = (y1 > v) != (y2 > v)
        x_at = x1 + (v - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (u < x_at)
    return inside


def _shape_mask(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of the unit shape (circumradius about 1) at local coordinates (u, v)."""
    r2 = u * u + v * v
    if kind == "circle":
        return r2 <= 1.0
    if kind == "ring":
        return (r2 <= 1.0) & (r2 >= 0.55**2)
    if kind == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.75
    if kind == "cross":
        arm = 0.3
        return ((np.abs(u) <= arm) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= arm) & (np.abs(u) <= 1.0))
    if kind == "triangle":
        return _inside_polygon(u, v, _regular_star(3, 0.5))  # inner 0.5 = the edge midpoints
    if kind == "star":
        return _inside_polygon(u, v, _regular_star(5, 0.42))
    raise ValueError(f"unknown shape kind {kind!r}")


@functools.cache
def _centred_alpha(kind: str, scale: float, rotation: float, size: int, ss: int) -> np.ndarray:
    """Coverage (size, size) float32 in [0, 1] of a shape centred in the image.

    Anti-aliased by supersampling: the shape is tested at ``ss x ss`` points per pixel and the
    pixel's coverage is the fraction inside.
    """
    coords = (np.arange(size * ss) + 0.5) / ss - size / 2  # sample points, pixel units
    dx, dy = np.meshgrid(coords, coords)  # dy grows downwards, as image rows do
    theta = math.radians(rotation)
    u = (dx * math.cos(theta) + dy * math.sin(theta)) / scale
    v = (-dx * math.sin(theta) + dy * math.cos(theta)) / scale
    inside = _shape_mask(kind, u, v).astype(np.float32)
    alpha = inside.reshape(size, ss, size, ss).mean(axis=(1, 3))
    alpha.flags.writeable = False  # shared through the cache
    return alpha


@functools.lru_cache(maxsize=8192)
def _alpha(
    kind: str, scale: float, rotation: float, dy: int, dx: int, size: int, ss: int
) -> np.ndarray:
    """The centred coverage moved by whole pixels (dy, dx); exact, as nothing reaches the border."""
    centred = _centred_alpha(kind, scale, rotation, size, ss)
    moved = np.zeros_like(centred)
    moved[max(dy, 0) : size + min(dy, 0), max(dx, 0) : size + min(dx, 0)] = centred[
        max(-dy, 0) : size - max(dy, 0), max(-dx, 0) : size - max(dx, 0)
    ]
    moved.flags.writeable = False
    return moved


def _offsets() -> tuple[tuple[int, int], ...]:
    steps = (-6, -3, 0, 3, 6)
    return tuple(itertools.product(steps, steps))


@dataclass(frozen=True)
class ShapesGrid:
    """The finite grid of generating factors of ``shapes`` and the renderer over it.

    A factor tuple is six indices, in the order of :attr:`FACTORS`, into the tuples below;
    ``render`` maps it to an image deterministically (no randomness, no hidden state).

    Attributes:
        shapes: Shape kinds; the class label is the index of the shape.
        positions: (dy, dx) whole-pixel offsets of the shape's centre from the image centre.
        scales: Shape radius in pixels (circumradius; the square's half side is 0.75 of it).
        rotations: Rotation angles in degrees. Circles and rings look the same at every angle.
        fg_colors: RGB foreground colours (0-255).
        bg_colors: RGB background colours (0-255), each far from every foreground colour.
        image_size: Side S of the rendered (3, S, S) images.
        supersample: Anti-aliasing: points tested per pixel along each axis.
    """

    FACTORS = ("shape", "position", "scale", "rotation", "fg_color", "bg_color")

    shapes: tuple[str, ...] = SHAPE_KINDS
    positions: tuple[tuple[int, int], ...] = _offsets()
    scales: tuple[float, ...] = (5.0, 7.0, 9.0)
    rotations: tuple[float, ...] = (0.0, 12.0, 24.0, 36.0, 48.0, 60.0)
    fg_colors: tuple[tuple[int, int, int], ...] = (
        (230, 60, 50),
        (60, 190, 80),
        (50, 100, 230),
        (240, 200, 40),
        (200, 60, 200),
        (40, 200, 210),
    )
    bg_colors: tuple[tuple[int, int, int], ...] = (
        (20, 20, 25),
        (50, 75, 60),
        (205, 205, 205),
        (245, 235, 205),
    )
    image_size: int = 32
    supersample: int = 4

    def __post_init__(self) -> None:
        reach = max(max(abs(dy), abs(dx)) for dy, dx in self.positions) + max(self.scales) * _REACH
        if reach > self.image_size / 2:
            raise ValueError("some shapes would be cut off by the border: shrink positions/scales")
        if set(self.fg_colors) & set(self.bg_colors):
            raise ValueError("a foreground colour equals a background colour")

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of values of each factor, in the order of :attr:`FACTORS`."""
        return (
            len(self.shapes),
            len(self.positions),
            len(self.scales),
            len(self.rotations),
            len(self.fg_colors),
            len(self.bg_colors),
        )

    @property
    def num_tuples(self) -> int:
        """Number of factor tuples in the grid (the nodes of its augmentation graph)."""
        return math.prod(self.sizes)

    def factor_tuples(self) -> Iterator[tuple[int, ...]]:
        """Every factor tuple, in the order of ``tuple_to_index`` (the shape varies slowest)."""
        return itertools.product(*(range(n) for n in self.sizes))

    def tuple_to_index(self, factors: np.ndarray) -> np.ndarray:
        """Flat grid indices (N,) int64 of factor tuples (N, 6) (row-major over :attr:`sizes`)."""
        factors = np.asarray(factors, dtype=np.int64)
        return np.ravel_multi_index(tuple(factors.T), self.sizes).astype(np.int64)

    def index_to_tuple(self, index: np.ndarray) -> np.ndarray:
        """Factor tuples (N, 6) int64 of flat grid indices (N,); inverse of ``tuple_to_index``."""
        return np.stack(np.unravel_index(np.asarray(index), self.sizes), axis=-1).astype(np.int64)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor tuples (n, 6) int64 drawn uniformly (with replacement) from the grid."""
        return np.stack([rng.integers(0, size, n) for size in self.sizes], axis=1).astype(np.int64)

    def describe(self, factors: tuple[int, ...]) -> dict[str, object]:
        """The factor values of one tuple, keyed by factor name (for captions and debugging)."""
        values = (
            self.shapes,
            self.positions,
            self.scales,
            self.rotations,
            self.fg_colors,
            self.bg_colors,
        )
        return {name: vals[i] for name, vals, i in zip(self.FACTORS, values, factors, strict=True)}

    def alpha(self, shape: int, position: int, scale: int, rotation: int) -> np.ndarray:
        """Foreground coverage (S, S) float32 in [0, 1] (read-only: it is cached)."""
        dy, dx = self.positions[position]
        return _alpha(
            self.shapes[shape],
            float(self.scales[scale]),
            float(self.rotations[rotation]),
            dy,
            dx,
            self.image_size,
            self.supersample,
        )

    def render(
        self, shape: int, position: int, scale: int, rotation: int, fg_color: int, bg_color: int
    ) -> torch.Tensor:
        """The image of one factor tuple: uint8 tensor of shape (3, S, S)."""
        return self.render_batch(
            np.array([[shape, position, scale, rotation, fg_color, bg_color]])
        )[0]

    def render_batch(self, factors: np.ndarray) -> torch.Tensor:
        """Images of factor tuples (N, 6): uint8 (N, 3, S, S), row i = ``render(*factors[i])``."""
        factors = np.asarray(factors, dtype=np.int64).reshape(-1, len(self.FACTORS))
        alpha = np.zeros((len(factors), self.image_size, self.image_size), dtype=np.float32)
        for i, row in enumerate(factors[:, :4].tolist()):
            alpha[i] = self.alpha(*row)
        fg = np.asarray(self.fg_colors, dtype=np.float32)[factors[:, 4]][:, :, None, None]
        bg = np.asarray(self.bg_colors, dtype=np.float32)[factors[:, 5]][:, :, None, None]
        images = bg + alpha[:, None] * (fg - bg)  # alpha compositing, (N, 3, S, S)
        return torch.from_numpy(np.rint(images).astype(np.uint8))

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Exact per-channel mean and std in [0, 1] of images drawn uniformly from the grid."""
        return _grid_stats(self)


@functools.lru_cache(maxsize=8)
def _grid_stats(grid: ShapesGrid) -> tuple[tuple[float, ...], tuple[float, ...]]:
    # Colours are independent of the coverage a, and moving a shape never cuts it off, so
    # E[x] and E[x^2] per channel only need E[a], E[a^2], E[a(1-a)], E[(1-a)^2] over centred shapes.
    alphas = np.stack(
        [
            _centred_alpha(kind, float(s), float(r), grid.image_size, grid.supersample)
            for kind, s, r in itertools.product(grid.shapes, grid.scales, grid.rotations)
        ]
    ).astype(np.float64)
    ea, ea2 = alphas.mean(), (alphas**2).mean()
    fg = np.asarray(grid.fg_colors, dtype=np.float64) / 255.0
    bg = np.asarray(grid.bg_colors, dtype=np.float64) / 255.0
    mean = bg.mean(0) + ea * (fg.mean(0) - bg.mean(0))
    second = (
        (1 - 2 * ea + ea2) * (bg**2).mean(0)
        + 2 * (ea - ea2) * fg.mean(0) * bg.mean(0)
        + ea2 * (fg**2).mean(0)
    )
    std = np.sqrt(second - mean**2)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


SHAPES_GRID = ShapesGrid()

#: The default sub-grid, as indices into ``SHAPES_GRID``'s factor values: all six shapes; the
#: centre and four corner positions; the smallest and largest scale; rotations 0, 24 and 48
#: degrees; three foreground and two background colours. 1,080 factor tuples, 840 distinct images.
SUBGRID: dict[str, tuple[int, ...]] = {
    "shape": (0, 1, 2, 3, 4, 5),
    "position": (0, 4, 12, 20, 24),
    "scale": (0, 2),
    "rotation": (0, 2, 4),
    "fg_color": (0, 2, 3),
    "bg_color": (0, 2),
}


def grid_values(
    grid: ShapesGrid, subgrid: dict[str, tuple[int, ...]] | None
) -> tuple[tuple[int, ...], ...]:
    """The factor indices a (sub-)grid keeps, one tuple per factor in ``ShapesGrid.FACTORS`` order.

    ``subgrid=None`` keeps the whole grid; a dict maps factor names to the indices kept (names
    it leaves out keep every value). Raises ``ValueError`` for unknown names or bad indices.
    """
    chosen = subgrid or {}
    unknown = set(chosen) - set(grid.FACTORS)
    if unknown:
        raise ValueError(f"unknown factors {sorted(unknown)}; factors are {grid.FACTORS}")
    values = []
    for name, size in zip(grid.FACTORS, grid.sizes, strict=True):
        kept = tuple(int(v) for v in chosen.get(name, range(size)))
        if not kept or min(kept) < 0 or max(kept) >= size or len(set(kept)) != len(kept):
            raise ValueError(f"{name} indices must be distinct and in [0, {size}), got {kept}")
        values.append(kept)
    return tuple(values)


@functools.lru_cache(maxsize=8)
def ambiguity_table(grid: ShapesGrid) -> np.ndarray:
    """How ambiguous each (shape, scale, rotation) is with its look-alike: (6, S, R) in (0, 1].

    The two coverages (shape and :data:`LOOKALIKE`, same scale and rotation, centred) are seen
    at low resolution (averaged over blocks, :data:`AMBIGUITY_RESOLUTION` pixels a side) and
    compared by the L1 distance d of those block averages, in pixels of area; the ambiguity is
    √(d_min / d) over the views of the same pair, 1 for each pair's most ambiguous view (the
    square root keeps the large views from being never ambiguous: 0.55 for a 9 px ring). Small
    shapes differ from their look-alikes by fewer pixels than large ones (a 5 px ring and a
    5 px circle differ by a 9 px² hole, a 9 px pair by 29 px²), and rotation moves a square's
    corners onto a cross's arms, so the table spreads over the grid. Symmetric: a shape and its
    look-alike share it.
    """
    block = grid.image_size // AMBIGUITY_RESOLUTION
    side = AMBIGUITY_RESOLUTION

    def low(kind: str, scale: float, rotation: float) -> np.ndarray:
        alpha = _centred_alpha(kind, scale, rotation, grid.image_size, grid.supersample)
        return alpha.reshape(side, block, side, block).sum(axis=(1, 3)).astype(np.float64)

    distance = np.zeros((len(grid.shapes), len(grid.scales), len(grid.rotations)))
    for shape, (i, scale), (j, rotation) in itertools.product(
        range(len(grid.shapes)), enumerate(grid.scales), enumerate(grid.rotations)
    ):
        other = grid.shapes[LOOKALIKE[SHAPE_KINDS.index(grid.shapes[shape])]]
        distance[shape, i, j] = np.abs(low(grid.shapes[shape], scale, rotation)
                                       - low(other, scale, rotation)).sum()
    pair_min = np.minimum(distance, distance[list(LOOKALIKE)]).min(axis=(1, 2), keepdims=True)
    table = np.sqrt(pair_min / distance)
    table.flags.writeable = False  # shared through the cache
    return table


@dataclass(frozen=True)
class ShapesKernel:
    """The augmentation kernel A(x | xbar) of the exact ``shapes`` graph, over a (sub-)grid.

    A discrete model of the ``shapes`` recipe, each part independent of the others: with its
    probability a part is redrawn uniformly from the kept values (possibly the same value):

    - crop: the (position, scale) pair (a random resized crop moves and rescales the shape);
    - rotation: the rotation;
    - colour: the (foreground, background) pair (hue jitter over the full circle);
    - shape: the shape, redrawn uniformly whatever the image (0 by default). Class-symmetric
      noise: the class eigenvectors of the graph do not change, only their eigenvalue, which
      becomes (1 - shape_p)^2.

    Then, where the image is ambiguous, a detailed shape loses its detail: with probability
    ``class_change_p * a`` a view of a ring, cross or star (:data:`DETAILED`) is drawn as its
    look-alike circle, square or triangle (:data:`LOOKALIKE`), ``a`` the
    :func:`ambiguity_table` of the view's (shape, scale, rotation), 1 for the most ambiguous
    view (``class_change_p`` 0 by default: no class changes). Small shapes are the most
    ambiguous, so class changes concentrate where images are hard to tell apart and the
    classes become *approximately* disconnected components that mix gradually (HaoChen et al.
    2021, Assumption 3.5; docs/THEORY.md, "The downstream guarantee"). The natural datum's
    label stays its own shape.

    :func:`explorer.graphs.shapes.shapes_augmentation_graph` builds W from these matrices and
    :class:`explorer.views.GraphViews` draws views from the same distribution.

    Attributes:
        values: the kept factor indices, one tuple per factor (see :func:`grid_values`).
        crop_p, rotate_p, color_p, shape_p: each part's probability of being redrawn.
        class_change_p: the class-change probability at the most ambiguous view, in
            [0, :data:`MAX_CLASS_CHANGE_P`].
    """

    values: tuple[tuple[int, ...], ...] = grid_values(SHAPES_GRID, SUBGRID)
    crop_p: float = 0.5
    rotate_p: float = 0.5
    color_p: float = 0.8
    shape_p: float = 0.0
    class_change_p: float = 0.0

    #: The independent parts, as factor names; tuples list factors in row-major order, and the
    #: factors of a part are adjacent in ``ShapesGrid.FACTORS``, so the kernel over tuples is
    #: the Kronecker product of the parts' kernels.
    PARTS = (("shape",), ("position", "scale"), ("rotation",), ("fg_color", "bg_color"))

    def __post_init__(self) -> None:
        for name in ("crop_p", "rotate_p", "color_p", "shape_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        if not 0.0 <= self.class_change_p <= MAX_CLASS_CHANGE_P:
            raise ValueError(f"class_change_p must be in [0, {MAX_CLASS_CHANGE_P}], got "
                             f"{self.class_change_p}")

    @property
    def probabilities(self) -> tuple[float, ...]:
        """Each part's redraw probability, in :attr:`PARTS` order."""
        return (self.shape_p, self.crop_p, self.rotate_p, self.color_p)

    @property
    def part_sizes(self) -> tuple[int, ...]:
        """How many values each part takes, in :attr:`PARTS` order."""
        counts = dict(zip(ShapesGrid.FACTORS, (len(v) for v in self.values), strict=True))
        return tuple(math.prod(counts[name] for name in part) for part in self.PARTS)

    def part_kernels(self) -> list[np.ndarray]:
        """The (m, m) kernel of each part: keep with probability 1 - p, else redraw uniformly."""
        return [
            (1.0 - p) * np.eye(m) + p / m
            for p, m in zip(self.probabilities, self.part_sizes, strict=True)
        ]

    def change_probabilities(self, factors: np.ndarray, grid: ShapesGrid) -> np.ndarray:
        """The probability (N,) that a view with factor tuple (N, 6) is drawn as its look-alike:
        ``class_change_p`` times its ambiguity for a detailed shape (:data:`DETAILED`) whose
        look-alike is a kept shape, else 0."""
        factors = np.asarray(factors, dtype=np.int64).reshape(-1, 6)
        if self.class_change_p == 0:
            return np.zeros(len(factors))
        table = ambiguity_table(grid)
        detailed = [grid.shapes.index(kind) for kind in DETAILED if kind in grid.shapes]
        lookalike = np.asarray(LOOKALIKE)[factors[:, 0]]
        changes = np.isin(factors[:, 0], detailed) & np.isin(lookalike, self.values[0])
        return self.class_change_p * table[factors[:, 0], factors[:, 2], factors[:, 3]] * changes

    def change_matrix(self, grid: ShapesGrid) -> np.ndarray:
        """C (T, T) over :meth:`tuples`, rows summing to 1: a view keeps its tuple with 1 - q or
        takes its look-alike's (same nuisance factors) with q = :meth:`change_probabilities`."""
        tuples = self.tuples()
        q = self.change_probabilities(tuples, grid)
        change = np.diag(1.0 - q)
        moved = np.flatnonzero(q > 0)
        if len(moved):
            swapped = tuples[moved].copy()
            swapped[:, 0] = np.asarray(LOOKALIKE)[swapped[:, 0]]
            change[moved, self.tuple_positions(swapped)] = q[moved]
        return change

    def tuples(self) -> np.ndarray:
        """Every factor tuple (T, 6) of the (sub-)grid, row-major (the kernel's order)."""
        mesh = np.meshgrid(*(np.asarray(v) for v in self.values), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1).astype(np.int64)

    def tuple_positions(self, factors: np.ndarray) -> np.ndarray:
        """Row of each factor tuple (N, 6) in :meth:`tuples`; ``ValueError`` if one is off-grid."""
        factors = np.asarray(factors, dtype=np.int64).reshape(-1, len(self.values))
        coords = []
        for column, kept in zip(factors.T, self.values, strict=True):
            lookup = {v: i for i, v in enumerate(kept)}
            try:
                coords.append([lookup[int(v)] for v in column])
            except KeyError as missing:
                raise ValueError(f"factor value {missing} is outside the kernel's grid") from None
        sizes = tuple(len(v) for v in self.values)
        return np.ravel_multi_index(tuple(np.asarray(coords)), sizes).astype(np.int64)


def split_factors(grid: ShapesGrid, split: str, seed: int, size: int) -> np.ndarray:
    """The factor tuples (size, 6) int64 of a split, class-balanced and in seeded random order.

    See the module docstring: scenes (tuples without rotation) are partitioned per class between
    train and test, then each split samples tuples without replacement from its own scenes.
    """
    scene_sizes = (len(grid.positions), len(grid.scales), len(grid.fg_colors), len(grid.bg_colors))
    num_scenes = math.prod(scene_sizes)
    num_train = int(round(TRAIN_SCENE_FRACTION * num_scenes))
    partition_rng = np.random.default_rng([seed, 0])  # shared by both splits: they must agree
    sample_rng = np.random.default_rng([seed, 1 if split == "train" else 2])
    num_classes = len(grid.shapes)
    per_class = -(-size // num_classes)
    rows = []
    # one partition of the scenes for every class: a held-out scene is held out for all six
    # shapes, so the scene alone says nothing about the class of a test image
    scenes = partition_rng.permutation(num_scenes)
    scenes = scenes[:num_train] if split == "train" else scenes[num_train:]
    for shape in range(num_classes):
        # a candidate is (scene, rotation); sample without replacement so no tuple repeats
        picks = sample_rng.choice(len(scenes) * len(grid.rotations), per_class, replace=False)
        scene = scenes[picks // len(grid.rotations)]
        rotation = picks % len(grid.rotations)
        position, scale, fg, bg = np.unravel_index(scene, scene_sizes)
        rows.append(np.stack([np.full(per_class, shape), position, scale, rotation, fg, bg], 1))
    factors = np.concatenate(rows).astype(np.int64)
    factors = factors[sample_rng.permutation(len(factors))]
    return factors[stratified_indices(factors[:, 0], size, seed)]


def subgrid_split_factors(
    grid: ShapesGrid, subgrid: dict[str, tuple[int, ...]], split: str, seed: int
) -> np.ndarray:
    """Every factor tuple (N, 6) of a split's scenes of a sub-grid, in seeded random order.

    As in :func:`split_factors`, the scenes (tuples without shape and rotation) are partitioned
    once for every class, 75% train and 25% test, so test images are held-out scenes of the same
    sub-grid, each held out with all six shapes.
    """
    shapes, positions, scales, rotations, fgs, bgs = grid_values(grid, subgrid)
    scene_mesh = np.meshgrid(positions, scales, fgs, bgs, indexing="ij")
    scenes = np.stack([m.ravel() for m in scene_mesh], axis=1)  # (S, 4)
    num_train = int(round(TRAIN_SCENE_FRACTION * len(scenes)))
    partition_rng = np.random.default_rng([seed, 0])  # shared by both splits: they must agree
    order = partition_rng.permutation(len(scenes))  # one partition for every class
    kept = scenes[order[:num_train] if split == "train" else order[num_train:]]
    rows = []
    for shape in shapes:
        for rotation in rotations:
            position, scale, fg, bg = kept.T
            rows.append(np.stack([np.full(len(kept), shape), position, scale,
                                  np.full(len(kept), rotation), fg, bg], 1))
    factors = np.concatenate(rows).astype(np.int64)
    order_rng = np.random.default_rng([seed, 1 if split == "train" else 2])
    return factors[order_rng.permutation(len(factors))]


def _dataset(factors: np.ndarray, mean: tuple, std: tuple, name: str) -> ImageDataset:
    return ImageDataset(
        images=SHAPES_GRID.render_batch(factors),
        labels=torch.from_numpy(factors[:, 0].copy()),
        classes=list(SHAPES_GRID.shapes),
        mean=mean,
        std=std,
        name=name,
        factors=torch.from_numpy(factors),
    )


@functools.lru_cache(maxsize=1)
def subgrid_stats() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] of the images of every :data:`SUBGRID` tuple."""
    kernel = ShapesKernel()
    pixels = SHAPES_GRID.render_batch(kernel.tuples()).double() / 255  # (1080, 3, S, S)
    mean = pixels.mean(dim=(0, 2, 3))
    std = pixels.std(dim=(0, 2, 3), unbiased=False)
    return tuple(float(m) for m in mean), tuple(float(v) for v in std)


@register_dataset(
    "shapes-subgrid", image_size=32, description="shapes on a 1,080-tuple sub-grid: exact graph"
)
def load_shapes_subgrid(request: DatasetRequest) -> ImageDataset:
    """810 train / 270 test images: every tuple of the split's scenes of :data:`SUBGRID`."""
    factors = subgrid_split_factors(SHAPES_GRID, SUBGRID, request.split, request.seed)
    factors = factors[limit_indices(factors[:, 0], request)]  # select before rendering
    mean, std = subgrid_stats()
    return fit_to_request(_dataset(factors, mean, std, "shapes-subgrid"), request)


@register_dataset("shapes", image_size=32, description="synthetic shapes on a finite factor grid")
def load_shapes(request: DatasetRequest) -> ImageDataset:
    """6000 train / 2000 test images (3, 32, 32) of six shape classes; nothing to download.

    Rendered at the grid's 32 px, then resized to ``request.image_size`` if that differs."""
    factors = split_factors(SHAPES_GRID, request.split, request.seed, SPLIT_SIZES[request.split])
    # select before rendering: the same images as the full split's, rendered only once
    factors = factors[limit_indices(factors[:, 0], request)]
    mean, std = SHAPES_GRID.channel_stats()
    return fit_to_request(_dataset(factors, mean, std, "shapes"), request)
