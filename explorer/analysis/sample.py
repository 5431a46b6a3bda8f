"""The evaluation sample: the fixed images every checkpoint of a run is analysed on.

A seeded subset of each split, drawn once per run (the run's seed), so that the metrics of two
checkpoints differ only because the network changed. The training part stays an
:class:`~explorer.data.ImageDataset` (labels, normalisation statistics and, for synthetic data,
the generating factors), because the views of the analysis are made from it exactly as training
makes them: by :func:`explorer.builders.build_views`, which may render from the factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from explorer.data import ImageDataset


@dataclass
class EvaluationSample:
    """The fixed images analysed at every checkpoint and where they came from.

    Attributes:
        train: at most ``samples`` training images (uint8, CPU), with labels and factors.
        test: at most ``samples`` test images, in the order of the test split.
        test_indices: Tensor of shape (M,), int64, the test images' indices in the test split.
    """

    train: ImageDataset
    test: ImageDataset
    test_indices: Tensor

    @property
    def classes(self) -> list[str]:
        return list(self.train.classes)


def sample_indices(n_train: int, n_test: int, samples: int, seed: int) -> tuple[Tensor, Tensor]:
    """Indices (int64) of the seeded subsets of at most ``samples`` items of each split: the
    training sample's in drawn order, the test sample's ascending (thumbnails read best in split
    order). The same for images (:func:`evaluation_sample`) and given features."""
    generator = torch.Generator().manual_seed(seed)
    train_idx = torch.randperm(n_train, generator=generator)[: min(samples, n_train)]
    test_idx = torch.randperm(n_test, generator=generator)[: min(samples, n_test)]
    return train_idx, test_idx.sort().values


def evaluation_sample(
    train: ImageDataset, test: ImageDataset, samples: int, seed: int
) -> EvaluationSample:
    """A seeded subset of at most ``samples`` images of each split (all of a smaller split)."""
    train_idx, test_idx = sample_indices(len(train), len(test), samples, seed)
    return EvaluationSample(train.subset(train_idx), test.subset(test_idx), test_idx)
