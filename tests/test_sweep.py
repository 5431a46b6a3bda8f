"""``explorer sweep``: a real two-value sweep through the command line, its manifest, its refusals,
its resume, and its table read back against the runs' own files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.readings.figures import sweep_figure
from explorer.rundir.artifacts import save_analysis
from explorer.rundir.run import Run
from explorer.rundir.sweep import read_manifest, sweep_run_names, sweep_table, value_slug
from tests.conftest import explorer

pytestmark = pytest.mark.slow

# shapes-subgrid with views from the exact graph's kernel (augment=auto is graph there): the
# field class_change_p acts. About 30 s per run on 2 busy cores, probe table included.
SMALL = ["dataset=shapes-subgrid", "train_limit=120", "test_limit=60", "backbone=cnn-narrow",
         "projector_hidden_dim=32", "projector_out_dim=16", "batch_size=32", "epochs=1",
         "warmup_epochs=0", "knn_every=0", "device=cpu", "analyze=off", "mu=30"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished sweep ``s`` of class_change_p = 0, 0.3 under ``<dir>/runs``; returns ``<dir>``."""
    work = tmp_path_factory.mktemp("sweep")
    result = explorer("sweep", "--runs-dir", "runs", "--name", "s", "class_change_p=0,0.3",
                      *SMALL, "--no-progress", cwd=work, check=True)
    # each run's probe table, then the sweep's table at the end
    assert result.stdout.splitlines()[-3].startswith("class_change_p  run  ")
    return work


def one_line_error(result) -> str:
    err = result.stderr.strip()
    assert result.returncode != 0 and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_one_run_per_value_with_the_swept_value(swept: Path) -> None:
    runs = swept / "runs"
    manifest = json.loads((runs / ".sweeps" / "s.json").read_text())
    assert manifest["runs"] == ["s-0", "s-0.3"] and manifest["values"] == [0.0, 0.3]
    assert manifest["key"] == "class_change_p" and manifest["format_version"] == 1
    assert manifest["preset"] is None and manifest["overrides"]["train_limit"] == 120
    for name, value in zip(manifest["runs"], manifest["values"], strict=True):
        saved = json.loads((runs / name / "config.json").read_text())["config"]
        assert saved["class_change_p"] == value and saved["epochs"] == 1
        assert json.loads((runs / name / "status.json").read_text())["state"] == "finished"
    listing = explorer("runs", "--runs-dir", "runs", cwd=swept, check=True).stdout
    assert [line.split()[0] for line in listing.splitlines()[1:]] == ["s-0", "s-0.3"]
    sweeps = explorer("sweeps", "--runs-dir", "runs", cwd=swept, check=True).stdout
    assert sweeps.strip() == "s  class_change_p  0.0: finished, 0.3: finished"


def test_a_bad_value_fails_before_anything_starts(tmp_path: Path) -> None:
    err = one_line_error(explorer("sweep", "class_change_p=0,2", *SMALL, cwd=tmp_path))
    assert "class_change_p must be in [0, 0.9] (got 2.0)" in err
    assert not (tmp_path / "runs").exists()  # no run, no manifest
    err = one_line_error(explorer("sweep", "lr=0.1,0.2", "mu=1,2", cwd=tmp_path))
    assert "exactly one field" in err


def test_an_existing_sweep_name_is_refused(swept: Path) -> None:
    before = sorted(p.name for p in (swept / "runs").iterdir())
    result = explorer("sweep", "--runs-dir", "runs", "--name", "s", "class_change_p=0.1,0.2",
                      *SMALL, cwd=swept)
    assert "sweep 's' already exists" in one_line_error(result)
    assert sorted(p.name for p in (swept / "runs").iterdir()) == before


def test_the_table_is_what_the_runs_files_say(swept: Path) -> None:
    runs = swept / "runs"
    # An analysis record of the first run's checkpoint, written by the package's own writer
    # (analyze=off kept the sweep fast); its guarantee numbers are arbitrary but distinct.
    guarantee = {"k": 4, "alpha": 0.02, "error_definition": "best head", "error": 0.125,
                 "error_lower": 0.1, "optimum_error": 0.0625, "optimum_error_lower": 0.0625,
                 "bound": 1.7, "gamma_k1": 0.33}
    save_analysis(Run(runs / "s-0"), 1, {"exact": {"gap": 0.4, "guarantee": guarantee}}, {})
    rows = sweep_table(runs, read_manifest(runs / ".sweeps" / "s.json"))
    assert [(r["value"], r["run"], r["state"]) for r in rows] == [
        (0.0, "s-0", "finished"), (0.3, "s-0.3", "finished")]
    for row in rows:
        probe = json.loads((runs / row["run"] / "probe.json").read_text())
        assert row["linear"] == probe["methods"]["trained"]["linear"]["accuracy"]
        assert row["knn"] == probe["methods"]["trained"]["knn"]["accuracy"]
    record = json.loads((runs / "s-0" / "analysis" / "epoch-0001.json").read_text())
    first = rows[0]
    assert first["epoch"] == 1 and first["share"] == pytest.approx(1 - record["exact"]["gap"])
    stored = record["exact"]["guarantee"]
    shown = ("alpha", "error", "error_lower", "optimum_error", "optimum_error_lower", "gamma_k1")
    assert {k: first[k] for k in shown} == {k: stored[k] for k in shown}
    # the bound is the proven 8α/(1 − γ_{k+1}) + 2α, recomputed, not the stored 1.7
    assert first["bound"] == pytest.approx(8 * 0.02 / 0.67 + 2 * 0.02)
    assert all(rows[1][k] is None for k in (*shown, "bound", "share", "epoch"))  # not analysed
    # explorer sweeps NAME prints the same, in percent; E(f) as its bracket, E(f*) closed
    table = explorer("sweeps", "s", "--runs-dir", "runs", cwd=swept, check=True).stdout
    cells = table.splitlines()[1].split()
    assert cells[:9] == ["0.0", "s-0", "finished", "1", "2.0", "10.0–12.5", "6.2", "27.9",
                         "0.33"]
    assert cells[9] == "60.0" and cells[10] == f"{100 * rows[0]['linear']:.1f}"


def test_resume_skips_finished_runs_and_starts_the_missing_one(swept: Path) -> None:
    runs = swept / "runs"
    kept = {p: p.stat().st_mtime_ns for p in (runs / "s-0").rglob("*") if p.is_file()}
    import shutil

    shutil.rmtree(runs / "s-0.3")  # as if the sweep had been killed before its second run
    result = explorer("sweep", "--resume", "runs/.sweeps/s.json", "--no-progress", cwd=swept)
    assert result.returncode == 0, result.stderr
    assert "s-0 finished, skipped" in result.stderr
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # the finished run was not touched
    config = json.loads((runs / "s-0.3" / "config.json").read_text())["config"]
    assert config["class_change_p"] == 0.3
    assert json.loads((runs / "s-0.3" / "status.json").read_text())["state"] == "finished"
    # by name, with --runs-dir: nothing left to train
    again = explorer("sweep", "--resume", "s", "--runs-dir", "runs", cwd=swept, check=True)
    assert "s-0.3 finished, skipped" in again.stderr


def test_ctrl_c_stops_the_sweep_at_a_checkpoint_and_resume_continues_it(tmp_path: Path) -> None:
    """SIGINT to the sweep (what Ctrl-C sends) stops the running run as it stops
    ``explorer train``; --resume continues that run exactly and then starts the next."""
    import signal
    import time

    from tests.conftest import popen_explorer

    fixed = [item for item in SMALL if not item.startswith("epochs=")] + ["log_every=1"]
    sweep = popen_explorer("sweep", "--name", "st", "epochs=12,1", *fixed, "--no-progress",
                           "--no-probe", cwd=tmp_path)  # probes are the other test's
    first = Run(tmp_path / "runs" / "st-12")
    try:
        deadline = time.monotonic() + 120
        while not ((first.path / "status.json").exists() and first.status().get("step", 0) > 0):
            assert sweep.poll() is None and time.monotonic() < deadline, "the run never trained"
            time.sleep(0.2)
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, err
    assert "sweep st stopped at st-12; continue it with: explorer sweep --resume" in err
    stopped = first.status()
    assert stopped["state"] == "stopped" and stopped["epoch"] < 12
    assert not (tmp_path / "runs" / "st-1").exists()  # the next run never started
    assert "st  epochs  12: stopped, 1: not started" in explorer("sweeps", cwd=tmp_path).stdout

    result = explorer("sweep", "--resume", "st", "--no-progress", "--no-probe", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert first.status()["state"] == "finished" and first.status()["epoch"] == 12
    epochs = [r["epoch"] for r in first.metrics() if r["kind"] == "epoch"]
    assert epochs == list(range(1, 13))  # resumed where it stopped: every epoch once
    assert Run(tmp_path / "runs" / "st-1").status()["state"] == "finished"


def test_resume_and_listing_refuse_a_damaged_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / ".sweeps"
    folder.mkdir(parents=True)
    (folder / "bad.json").write_text("{not json")
    err = one_line_error(explorer("sweep", "--resume", "bad", cwd=tmp_path))
    assert "corrupt" in err and "bad.json" in err
    (folder / "bad.json").write_text(json.dumps({"format_version": 1, "name": "bad"}))
    assert "is corrupt (it lacks key" in one_line_error(explorer("sweeps", "bad", cwd=tmp_path))
    listing = explorer("sweeps", cwd=tmp_path, check=True).stdout
    assert listing.startswith("bad  (damaged: ")
    assert "does not exist" in one_line_error(explorer("sweep", "--resume", "x", cwd=tmp_path))


def test_help_answers_and_says_how_to_use_several_gpus() -> None:
    text = explorer("sweep", "--help", cwd=Path.cwd(), check=True).stdout
    assert "CUDA_VISIBLE_DEVICES" in text and "torchrun" in text and "--resume" in text
    assert "usage: explorer sweeps" in explorer("sweeps", "--help", cwd=Path.cwd()).stdout


def test_a_sweep_under_torchrun_is_refused(tmp_path: Path) -> None:
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}  # what torchrun sets
    result = explorer("sweep", "lr=0.1,0.2", *SMALL, cwd=tmp_path, env=env)
    assert "does not run under torchrun" in one_line_error(result)
    assert not (tmp_path / "runs").exists()


def test_run_names_are_deterministic_and_safe() -> None:
    assert sweep_run_names("s", [0.0, 0.05, 1e-05]) == ["s-0", "s-0.05", "s-1e-05"]
    assert value_slug("a/b c") == "a_b_c" and value_slug(True) == "true"
    with pytest.raises(Exception, match="repeat a value"):
        sweep_run_names("s", [0.1, 0.1])


def test_the_figure_clips_a_vacuous_bound_and_says_so() -> None:
    rows = [{"value": v, "alpha": a, "error": 0.1, "optimum_error": 0.05, "bound": b,
             "share": 0.5, "linear": 0.8, "knn": None}
            for v, a, b in ((0.0, 0.0, 0.0), (0.1, 0.05, 2.5))]
    fig = sweep_figure(rows, "class_change_p")
    traces = {t.name: t for t in fig.data}
    bound = next(t for n, t in traces.items() if n.startswith("bound 8α"))
    assert list(bound.y) == [0.0, 250.0] and "1 of 2 above 100%" in bound.name
    assert list(traces["α (Assumption 3.5)"].y) == [0.0, 5.0]
    assert list(traces["kNN probe accuracy"].y) == [None, None]
    assert fig.layout.yaxis.range == (0, 103.0) and list(fig.data[-1].y) == [100.0]
