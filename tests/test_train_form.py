"""The Train form a person can read (grouped fields with help, every error at once, the warm-up
warning, the measured training time) and the trainer's phases after training (status.json's
``phase``, shown by the Train page until the process exits)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.config import Config, build_config, config_warnings, form_problems, problems
from explorer.config_docs import ESSENTIALS, FIELD_DOCS, GROUPS, fields_of
from explorer.errors import UserError
from explorer.rundir.run import Run, create_run, pid_alive
from tests.conftest import DASHBOARD, TINY
from tests.dashboard_runs import opened_groups, vega_charts

TINY_VALUES = dict(item.split("=") for item in TINY if not item.startswith("log_every"))


def train_page(runs_dir: Path, monkeypatch: pytest.MonkeyPatch, **state: object) -> AppTest:
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(runs_dir))
    app = AppTest.from_file(str(DASHBOARD / "train_page.py"), default_timeout=120)
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


ALL_OPEN = opened_groups()


def field(app: AppTest, name: str):  # type: ignore[no-untyped-def]
    return app.get_by_key(f"field-shapes-demo-{name}")


def red_notes(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown if m.value.startswith(":red[")]


# -- the field docs and the checks -------------------------------------------------------------
def test_every_config_field_has_a_group_a_title_and_a_one_line_help() -> None:
    names = [f.name for f in fields(Config)]
    assert len(names) >= 30 and set(names) == set(FIELD_DOCS)
    for name in names:
        doc = FIELD_DOCS[name]
        assert doc.group in GROUPS, name
        assert doc.title and doc.help and "\n" not in doc.help, name
    assert set(ESSENTIALS) <= set(names)
    assert all(fields_of(group) for group in GROUPS)  # no empty group in the form
    assert "squared radius" in FIELD_DOCS["mu"].help and "cuts the optimum off" \
        in FIELD_DOCS["mu"].help


def test_problems_names_every_bad_field_and_validate_the_first() -> None:
    config = Config(epochs=0, batch_size=1, mu=-1.0, knn_k=0)
    found = problems(config)
    assert [f for f, _ in found] == ["mu", "epochs", "batch_size", "knn_k"]
    for key, message in found:
        assert key in message and "\n" not in message
    with pytest.raises(UserError) as first:
        build_config(None, None, {"epochs": 0, "batch_size": 1, "mu": -1, "knn_k": 0})
    assert str(first.value) == found[0][1]
    assert problems(Config()) == []


def test_form_problems_reads_each_typed_field_and_keeps_the_command_lines_message() -> None:
    config, found = form_problems("shapes-demo", {"epochs": "abc", "batch_size": "-3"})
    assert config is None and [f for f, _ in found] == ["epochs", "batch_size"]
    for key, value in (("epochs", "abc"), ("batch_size", "-3")):  # the one-error path, alone
        with pytest.raises(UserError) as alone:
            build_config("shapes-demo", None, {key: value}, where="the form")
        assert str(alone.value) == dict(found)[key]
    config, found = form_problems("shapes-demo", {"epochs": "7"})
    assert found == [] and config == build_config("shapes-demo", None, {"epochs": 7})


def test_a_warm_up_as_long_as_training_is_warned_about() -> None:
    for warmup, epochs, warned in ((10, 10, True), (12, 10, True), (9, 10, False), (0, 1, False)):
        found = config_warnings(Config(warmup_epochs=warmup, epochs=epochs))
        assert [f for f, _ in found] == (["warmup_epochs"] if warned else []), (warmup, epochs)


# -- the form ----------------------------------------------------------------------------------
def test_the_form_groups_fields_with_help_and_shows_the_essentials_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folded = train_page(tmp_path / "runs", monkeypatch)
    drawn = {w.key.removeprefix("field-shapes-demo-") for w in
             [*folded.text_input, *folded.selectbox, *folded.checkbox]
             if w.key and w.key.startswith("field-")}
    assert drawn == set(ESSENTIALS)  # folded groups draw nothing until opened
    app = train_page(tmp_path / "runs", monkeypatch, **ALL_OPEN)
    widgets = [*app.text_input, *app.selectbox, *app.checkbox]
    by_key = {w.key.removeprefix("field-shapes-demo-"): w for w in widgets
              if w.key and w.key.startswith("field-")}
    assert set(by_key) == {f.name for f in fields(Config)}
    for name, widget in by_key.items():
        assert widget.help == FIELD_DOCS[name].help, name
        assert FIELD_DOCS[name].title in widget.label, name
    titles = [e.label for e in app.expander]
    assert [t.split(" settings")[0].removeprefix("More ") for t in titles[1:]] == list(GROUPS)
    preset = build_config("shapes-demo")  # the form starts from the preset
    assert field(app, "epochs").value == str(preset.epochs)
    assert field(app, "mu").value == str(preset.mu)


def test_two_bad_fields_are_both_marked_and_both_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = train_page(tmp_path / "runs", monkeypatch, **opened_groups("model", "optimisation"))
    field(app, "epochs").set_value("abc")
    field(app, "projector_out_dim").set_value("0")  # in the model group
    app.run()
    expected = {}
    for key, value in (("epochs", "abc"), ("projector_out_dim", "0")):
        with pytest.raises(UserError) as err:
            build_config("shapes-demo", None, {key: value}, where="the form")
        expected[key] = str(err.value)
    assert sorted(red_notes(app)) == sorted(f":red[{m}]" for m in expected.values())
    assert any(e.label.startswith("More model settings") and "1 to fix" in e.label
               for e in app.expander)
    frames = "".join(h.proto.body for h in app.get("html"))
    assert all(f"st-key-field-shapes-demo-{k}" in frames for k in expected)
    next(b for b in app.button if b.label == "Launch").click().run()
    assert sorted(e.value for e in app.error) == sorted(expected.values())
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    field(app, "epochs").set_value("5")
    field(app, "projector_out_dim").set_value("32")
    field(app, "warmup_epochs").set_value("5")
    app.run()
    assert red_notes(app) == [] and not any("to fix" in e.label for e in app.expander)
    assert any("warmup_epochs (5) >= epochs (5)" in w.value for w in app.warning)


def test_a_folded_group_keeps_what_was_typed_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Folding a group takes its fields off the page, not their values: a warm-up typed in the
    optimisation group still warns once the group is folded, and comes back when reopened."""
    app = train_page(tmp_path / "runs", monkeypatch, **opened_groups("optimisation"))
    field(app, "epochs").set_value("5")
    field(app, "warmup_epochs").set_value("5")
    app.run()
    assert any("warmup_epochs (5) >= epochs (5)" in w.value for w in app.warning)
    for is_open in (False, True):
        app.session_state["train-group-optimisation"] = is_open
        app.run()
        assert not app.exception, [e.message for e in app.exception]
        drawn = {w.key for w in app.text_input if w.key}
        assert ("field-shapes-demo-warmup_epochs" in drawn) == is_open
        assert any("warmup_epochs (5) >= epochs (5)" in w.value for w in app.warning), is_open
    assert field(app, "warmup_epochs").value == "5"


def test_the_training_time_is_measured_on_the_chosen_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = train_page(tmp_path / "runs", monkeypatch, **ALL_OPEN)
    values = {**TINY_VALUES, "dataset": "shapes", "epochs": "6", "augment": "auto"}
    for key, value in values.items():
        field(app, key).set_value(value)
    app.run()
    assert not app.info and any("Estimate time" in c.value for c in app.caption)
    started = time.perf_counter()
    next(b for b in app.button if b.label == "Estimate time").click().run()
    print(f"\nestimate measured in {time.perf_counter() - started:.1f} s")
    assert not app.exception, [e.message for e in app.exception]
    steps = 6 * (256 // 64)  # epochs x (train_limit // batch_size): the last partial batch drops
    line = next(i.value for i in app.info if i.value.startswith("Training: "))
    print(line)
    assert f"on cpu ({steps} steps at" in line and "measured" in line
    assert "not estimated: no run of this data set" in line  # nothing analysed here yet
    field(app, "epochs").set_value("60").run()  # same shape: rescaled, not measured again
    line = next(i.value for i in app.info if i.value.startswith("Training: "))
    assert f"on cpu ({10 * steps} steps at" in line


def test_the_estimate_adds_the_probe_and_analysis_an_analysed_run_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28, item 2: the estimate covers what follows training, from the records of a run
    analysed here with the same data, network and analysis size."""
    from explorer.rundir.artifacts import save_analysis

    runs = tmp_path / "runs"
    values = {**TINY_VALUES, "dataset": "shapes", "epochs": "6", "augment": "auto",
              "checkpoint_every": "4", "analyze": "end"}
    done = create_run(runs, build_config("shapes-demo", None, values), name="done-before")
    seconds = {2: 30.0, 4: 3.0, 6: 5.0, 8: 4.0}  # the first pays the one-off costs
    for epoch, spent in seconds.items():
        save_analysis(done, epoch, {"seconds": spent}, {"labels": np.zeros(2)})
    done.save_probe({"epoch": 8, "classes": [], "n_train": 0, "n_test": 0, "methods": {},
                     "seconds": 12.0})
    app = train_page(runs, monkeypatch, **ALL_OPEN)
    for key, value in values.items():
        field(app, key).set_value(value)
    app.run()
    next(b for b in app.button if b.label == "Estimate time").click().run()
    assert not app.exception, [e.message for e in app.exception]
    line = next(i.value for i in app.info if i.value.startswith("Training: "))
    kept = [e for e in range(1, 7) if e % 4 == 0 or e == 6]  # checkpoints of 6 epochs, every 4
    analysis = 30.0 + (len(kept) - 1) * 4.0  # the first, then the median of the others
    assert (f"then the probe about 12 s, the analysis of {len(kept)} checkpoints about "
            f"{analysis:.0f} s (as measured on run done-before)") in line, line


def test_stop_clears_the_launched_banner_and_the_launched_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    run = create_run(runs, build_config("shapes-demo"), name="launched")
    run.update_status(state="running", pid=os.getpid(), phase="training")  # alive: this test
    app = train_page(runs, monkeypatch, selected_run="launched", launched=("launched", 1),
                     **{"run-name-preset": "shapes-demo", "run-name": "launched"})
    assert any("Launched `launched`" in s.value for s in app.success)
    assert any("launched**: running" in p.proto.text for p in app.get("progress"))
    next(b for b in app.button if b.label == "Stop").click().run()
    assert run.stop_requested()
    assert not app.success and app.text_input(key="run-name").value != "launched"
    assert any("Stop requested" in t.proto.body for t in app.get("toast"))


def test_a_run_before_its_first_knn_epoch_says_so_instead_of_an_empty_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    run = create_run(runs, build_config("shapes-demo"), name="young")
    run.update_status(state="running", pid=os.getpid(), phase="training")  # alive: this test
    for step in range(12):
        run.append_metrics({"kind": "step", "epoch": step / 4, "step": step, "loss": -1.0,
                            "lr": 0.1, "images_per_s": 500.0 if step % 3 else 50.0})
    app = train_page(runs, monkeypatch, selected_run="young")
    (curves, data), = vega_charts(app)
    knn_panel = curves["vconcat"][0]["hconcat"][1]
    assert knn_panel["encoding"]["text"]["value"].startswith("no kNN accuracy yet")
    speed = [row["value"] for row in data["rows"] if row["panel"] == "speed"]
    assert len(speed) == 12 and set(speed) == {500.0}  # the dips of checkpoint steps smoothed


# -- the phases after training -----------------------------------------------------------------
def test_a_phase_is_believed_only_while_its_process_holds_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = create_run(tmp_path, build_config("shapes-demo"), name="r")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.update_status(state="finished", pid=os.getpid())
    run.set_phase("analysing", 2, 5)
    assert run.activity() is None  # alive, but not the run's writer: a reused pid
    run.lock()
    try:
        assert run.activity() == "analysing checkpoint 2/5"
        monkeypatch.setenv("EXPLORER_RUNS_DIR", str(tmp_path))
        runs_page = AppTest.from_file(str(DASHBOARD / "runs_page.py"),
                                      default_timeout=120).run()
        assert not runs_page.exception
        states = list(runs_page.dataframe[0].value["state"])
        assert states == ["finished, now analysing checkpoint 2/5"]
        run.set_phase("probing")
        assert re.fullmatch(r"probing the last checkpoint \(\d+ s\)", run.activity() or "")
        run.set_phase("training")  # finished: training is over whatever the phase says
        assert run.activity() is None
        run.update_status(state="running")
        assert run.activity() == "training"
        run.set_phase("done")
        assert run.activity() is None
        run.update_status(pid=dead.pid, phase="analysing")  # the process is gone
        assert run.activity() is None
    finally:
        run.unlock()


def test_a_launched_run_shows_training_probing_and_analysing_until_it_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny run launched from the form: status.json goes through the phases, and the page
    says what the process does (not "Nothing is training") while it probes and analyses."""
    runs = tmp_path / "runs"
    app = train_page(runs, monkeypatch, **ALL_OPEN)
    values = {**TINY_VALUES, "epochs": "3", "checkpoint_every": "1", "analyze": "end",
              "analysis_projection": "pca"}
    for key, value in values.items():
        field(app, key).set_value(value)
    app.text_input(key="run-name").set_value("phased")
    next(b for b in app.button if b.label == "Launch").click().run()
    assert any("Launched `phased`" in s.value for s in app.success)
    assert app.text_input(key="run-name").value != "phased"  # a fresh name for the next one
    run, seen, shown = Run(runs / "phased"), [], None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = run.status() if (run.path / "status.json").exists() else {}
        pid = status.get("pid")
        if pid and not pid_alive(pid):
            break
        step = (status.get("phase"), status.get("phase_done"), status.get("phase_total"))
        if status.get("phase") and (not seen or seen[-1] != step):
            seen.append(step)
        if shown is None and status.get("phase") == "analysing" and status.get("phase_done"):
            page = train_page(runs, monkeypatch, selected_run="phased")
            if pid_alive(pid):  # drawn while the process was still at work
                shown = page
        time.sleep(0.05)
    else:
        raise AssertionError(f"the trainer did not exit; phases seen: {seen}")
    print(f"\nphases seen: {seen}")
    order = ["training", "probing", "analysing", "done"]
    firsts = [p for i, (p, _, _) in enumerate(seen) if p not in [q for q, _, _ in seen[:i]]]
    assert firsts == [p for p in order if p in firsts]  # never back to an earlier phase
    assert {"training", "analysing", "done"} <= set(firsts)
    counts = [(d, n) for p, d, n in seen if p == "analysing" and d is not None]
    assert counts and all(n == 3 and 1 <= d <= 3 for d, n in counts)  # 3 epochs, 1 per ckpt
    assert shown is not None, "the page was never drawn while the run was analysed"
    texts = [p.proto.text for p in shown.get("progress")]
    assert any("phased**: finished" in t and "now analysing checkpoint" in t for t in texts)
    assert shown.subheader[0].value == "Finishing: probing and analysing"
    assert "probe of epoch 3" in (runs / ".launches" / "phased.log").read_text()
    assert math.isclose(run.status()["progress"], 1.0)
    after = train_page(runs, monkeypatch, selected_run="phased")
    assert after.subheader[0].value == "Nothing is training"
    assert not any("now " in p.proto.text for p in after.get("progress"))
