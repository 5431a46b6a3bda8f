"""Config building: presets, overrides, inheritance and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.config import Config, build_config, list_presets, parse_overrides
from explorer.errors import UserError


def test_every_preset_builds(tmp_path: Path) -> None:
    (tmp_path / "class_a").mkdir()  # imagefolder presets need an existing data_root
    presets = list_presets()
    assert {"shapes-demo", "digits-demo", "cifar10-paper", "imagenet-paper"} <= set(presets)
    for name in presets:
        config = build_config(name, overrides=[f"data_root={tmp_path}"])
        assert isinstance(config, Config)
    for base in ("shapes-demo", "digits-demo", "cifar10-paper", "imagenet-paper"):
        for loss in ("simclr", "simsiam"):
            assert f"{base}-{loss}" in presets


def test_paper_recipes_match_design() -> None:
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
