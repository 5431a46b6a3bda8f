"""Config building: presets, overrides, inheritance and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer.config import Config, build_config, list_presets, parse_overrides
from explorer.config_docs import FIELD_DOCS
from explorer.errors import UserError
from explorer.graphs import optimum as O


def test_every_preset_builds(tmp_path: Path) -> None:
    (tmp_path / "class_a").mkdir()  # imagefolder presets need an existing data_root
    presets = list_presets()
    assert {"shapes-demo", "digits-demo", "cifar10-paper", "imagenet-paper"} <= set(presets)
    for name in presets:
        config = build_config(name, overrides=[f"data_root={tmp_path}"])
        assert isinstance(config, Config)
    for base in ("shapes-demo", "digits-demo", "mnist-demo", "cifar10-paper", "imagenet-paper"):
        for loss in ("simclr", "simsiam"):
            assert f"{base}-{loss}" in presets


def test_paper_recipes_match_the_paper() -> None:
    cifar = build_config("cifar10-paper")
    assert (cifar.backbone, cifar.mu, cifar.batch_size, cifar.epochs) == (
        "resnet18-cifar",
        1,
        512,
        800,
    )
    assert (cifar.projector_hidden_dim, cifar.projector_out_dim) == (2048, 1000)
    assert cifar.lr == 0.03 and cifar.weight_decay == 5e-4 and cifar.warmup_epochs == 10
    assert cifar.effective_lr == pytest.approx(0.03 * 512 / 256)


def test_inheritance_and_override_order() -> None:
    simclr = build_config("shapes-demo-simclr", overrides=["epochs=3"])
    demo = build_config("shapes-demo")
    assert simclr.loss == "simclr" and simclr.dataset == demo.dataset
    assert simclr.epochs == 3 and simclr.batch_size == demo.batch_size


def test_overrides_are_typed() -> None:
    values = parse_overrides(["epochs=5", "mu=10", "amp=false", "lr=3e-2", "dataset=digits"])
    assert values == {"epochs": 5, "mu": 10.0, "amp": False, "lr": 0.03, "dataset": "digits"}
    assert isinstance(values["mu"], float) and isinstance(values["epochs"], int)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["epoch=5"], "did you mean 'epochs'"),
        (["dataset=cifar11"], "did you mean 'cifar10'"),
        (["backbone=resnet19"], "unknown backbone"),
        (["loss=byol"], "choose one of: spectral, simclr, simsiam"),
        (["lr=0"], "lr must be positive"),
        (["lr=-1"], "lr must be positive"),
        (["epochs=0"], "epochs must be at least 1"),
        (["mu=0"], "mu must be positive"),
        (["batch_size=1"], "batch_size must be at least 2"),
        (["epochs=2.5"], "not a valid int"),
        (["epochs"], "must look like key=value"),
        (["dataset=imagefolder", "data_root=/nonexistent/folder"], "missing or empty"),
        (["device=tpu"], "unknown device"),
        (["dataset=shapes-subgrid", "class_change_p=0.95"], r"class_change_p must be in \[0, 0"),
        (["dataset=shapes-subgrid", "crop_p=1.5"], "crop_p must be a probability"),
        (["dataset=digits", "class_change_p=0.2"], "sets the kernel of augment=graph"),
        (["dataset=shapes", "augment=shapes", "color_p=0.3"], "sets the kernel of augment=graph"),
    ],
)
def test_bad_values_give_one_line(overrides: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        build_config(overrides=overrides)
    assert "\n" not in str(info.value)


def test_unknown_preset_suggests() -> None:
    with pytest.raises(UserError, match="did you mean 'shapes-demo'"):
        build_config("shape-demo")


def test_bad_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("epochs = [\n")
    with pytest.raises(UserError, match="not valid TOML"):
        build_config(config_file=path)
    path.write_text('base = "shapes-demo"\nbatchsize = 3\n')
    with pytest.raises(UserError, match="did you mean 'batch_size'"):
        build_config(config_file=path)


def test_the_mu_help_gives_the_rule_for_the_optimum_s_largest_row() -> None:
    """max‖f*(x)‖² is at least the number of classes, and more once the top k holds eigenvectors
    inside the classes (docs/THEORY.md, "The ball"): the μ help says so on one line."""
    help_ = FIELD_DOCS["mu"].help
    assert "at least the number of classes" in help_ and "Spectrum page" in help_
    assert "up to about" not in help_ and "\n" not in help_
    # three disconnected classes, each two weakly joined sub-groups of three nodes
    group = np.repeat(np.arange(6), 3)
    same_class = (group // 2)[:, None] == (group // 2)[None, :]
    W = np.where(group[:, None] == group[None, :], 1.0, np.where(same_class, 0.1, 0.0))
    assert O.max_optimal_sq_norm(W, 3) == pytest.approx(3.0)  # the class block alone: r
    assert O.max_optimal_sq_norm(W, 6) > 5.0  # with the sub-group eigenvectors (γ = 0.82)


def test_the_kernel_fields_reach_the_graph_views_kernel() -> None:
    from explorer.builders import graph_kernel

    config = build_config(overrides=["dataset=shapes-subgrid", "crop_p=0.3", "rotate_p=0.1",
                                     "color_p=0.6", "class_change_p=0.4"])
    kernel = graph_kernel(config)
    assert (kernel.crop_p, kernel.rotate_p, kernel.color_p, kernel.class_change_p) == (
        0.3, 0.1, 0.6, 0.4)
    default = graph_kernel(build_config(overrides=["dataset=shapes-subgrid"]))
    assert (default.crop_p, default.rotate_p, default.color_p, default.class_change_p) == (
        0.5, 0.5, 0.8, 0.0)  # today's demo


@pytest.mark.parametrize(("dataset", "recipe"), [("mnist", "auto"), ("fashion-mnist", "fashion")])
def test_the_real_image_presets_differ_only_in_their_loss_and_leave_room_for_ten_classes(
    dataset: str, recipe: str
) -> None:
    """The comparison on real images holds everything but the objective fixed; the spectral
    preset's ball tr E[f fᵀ] <= mu admits ten eigenvalues of 0.9, one per class
    (docs/THEORY.md, "The ball")."""
    from explorer.readings.spectrum import NEAR_ONE, eigenvalue_cap

    spectral = build_config(f"{dataset}-demo")
    assert (spectral.dataset, spectral.augment, spectral.loss, spectral.train_limit,
            spectral.test_limit) == (dataset, recipe, "spectral", 0, 0)  # fmt: skip
    assert eigenvalue_cap(spectral.mu, NEAR_ONE) >= 10
    keep = ("dataset", "augment", "backbone", "epochs", "batch_size", "lr", "warmup_epochs",
            "projector_hidden_dim", "projector_out_dim", "seed")
    for loss in ("simclr", "simsiam"):
        other = build_config(f"{dataset}-demo-{loss}")
        assert other.loss == loss
        assert [getattr(other, k) for k in keep] == [getattr(spectral, k) for k in keep]


def test_the_builtin_names_are_exactly_what_the_registries_hold() -> None:
    """config.BUILTIN_NAMES lets a config be checked without torch: each name must be one the
    registries accept (else a bad config would pass), and each registered name must be there
    (else listing runs that use it would import torch for nothing)."""
    from explorer.config import BUILTIN_NAMES
    from explorer.data import list_datasets
    from explorer.losses import LOSSES
    from explorer.models import PRECOMPUTED, list_backbones

    assert sorted(BUILTIN_NAMES["dataset"]) == list_datasets()
    assert sorted(BUILTIN_NAMES["backbone"]) == sorted([*list_backbones(), PRECOMPUTED])
    assert BUILTIN_NAMES["loss"] == LOSSES


def test_the_configs_class_change_limit_is_the_kernels() -> None:
    from explorer.config import MAX_CLASS_CHANGE_P
    from explorer.data import shapes

    assert MAX_CLASS_CHANGE_P == shapes.MAX_CLASS_CHANGE_P


def test_listing_runs_reads_their_configs_without_torch(tmp_path: Path) -> None:
    """The Runs page (the dashboard's first page) lists every run's config: with the built-in
    names that needs no torch (about 1.5 s to import on 2 cores); a torchvision backbone, known
    only to torchvision, is still checked there."""
    import subprocess
    import sys

    from explorer.rundir.run import create_run

    create_run(tmp_path, build_config("shapes-demo"), name="builtin")
    create_run(tmp_path, build_config("shapes-demo", overrides=["backbone=torchvision:resnet18"]),
               name="torchvision")
    script = ("import sys; from pathlib import Path; "
              "from explorer.readings.overview import summaries; "
              "rows = {s.name: s for s in summaries(Path(sys.argv[1]))}; "
              "print(rows['builtin'].state, rows['builtin'].dataset, 'torch' in sys.modules)")
    listed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                            text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    assert listed.stdout.split() == ["created", "shapes-subgrid", "True"]  # the torchvision run
    (tmp_path / "torchvision").rename(tmp_path.parent / f"{tmp_path.name}-torchvision")
    listed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                            text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    assert listed.stdout.split() == ["created", "shapes-subgrid", "False"]


def test_a_name_registered_by_the_users_code_is_looked_up_in_the_registry(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = ("from torch import nn; from explorer.models import register_backbone; "
              "from explorer.config import build_config; "
              "register_backbone('my-net')(lambda in_channels: nn.Identity()); "
              "print(build_config('shapes-demo', overrides=['backbone=my-net']).backbone)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.split() == ["my-net"]
    with pytest.raises(UserError, match="unknown backbone 'my-net'"):  # not registered here
        build_config("shapes-demo", overrides=["backbone=my-net"])
