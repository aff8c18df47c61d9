"""Tests of the one-command demo: its pure parts, and a reduced end-to-end run on LocalPlatform.

The end-to-end test runs the real thing (300 digits, 1 round, both arms: the pipeline template
installed twice and walked node by node, custom nodes through ``main.ServiceRunner``) in-process,
with an audit hook that records every socket connection, from a temporary working directory.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo.adapter import class_probabilities, classifier_from_arrays, classifier_to_arrays, fit_classifier
from demo.classification import top_k_records
from demo.data import LABELS, decode_png, encode_png, image_features, load_digits_images, plan_pools
from demo.isolation import wants_demo
from demo.report import DemoSummary, RoundResult, label_rows, labels_to_plot, render_markdown, uncertainty_verdict
from demo.run import DemoOptions

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------ pure parts
def test_digits_png_round_trip_gives_the_sklearn_features():
    from sklearn.datasets import load_digits

    data = load_digits_images(60, seed=3)
    decoded = np.stack([decode_png(encode_png(img)) for img in data.images])
    assert decoded.shape == (60, 32, 32)
    features = image_features(decoded)
    index = [int(name[6:10]) for name in data.names]
    expected = load_digits().data[index] / 16.0
    np.testing.assert_allclose(features, expected, atol=1 / 255 + 1e-9)
    assert set(data.labels) == set(LABELS)


def test_pool_plan_is_a_seeded_partition():
    plan = plan_pools(1797, seed=5)
    allocated = np.concatenate([plan.test, plan.initial, plan.pool])
    assert sorted(allocated.tolist()) == list(range(1797))
    assert (len(plan.test), len(plan.initial)) == (359, 100)
    again = plan_pools(1797, seed=5)
    assert np.array_equal(plan.test, again.test) and np.array_equal(plan.initial, again.initial)
    assert not np.array_equal(plan.test, plan_pools(1797, seed=6).test)


def test_weights_round_trip_without_pickle(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.random((40, 64))
    labels = np.array(["1", "2", "3", "1"] * 10)
    classifier = fit_classifier(features, labels)
    np.savez(tmp_path / "weights.npz", **classifier_to_arrays(classifier))
    with np.load(tmp_path / "weights.npz", allow_pickle=False) as arrays:
        restored = classifier_from_arrays(dict(arrays))
    np.testing.assert_allclose(restored.predict_proba(features), classifier.predict_proba(features))
    probabilities = class_probabilities(restored, features, list(LABELS))
    assert probabilities.shape == (40, 10)
    assert np.all(probabilities[:, [0, 4, 5, 6, 7, 8, 9]] == 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


def test_top_k_records_are_what_the_adapter_uploads():
    proba = np.array([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]])
    records = top_k_records(proba, ["a", "b"], ["x", "y", "z"], k=3)
    assert records[records.item_id == "a"]["label"].tolist() == ["y", "z", "x"]
    assert records[records.item_id == "b"]["label"].tolist() == ["x", "y", "z"]  # ties: lower index first
    np.testing.assert_allclose(records.groupby("item_id")["confidence"].sum(), [1.0, 1.0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rounds": 0}, "--rounds: 0 is not an integer in"),
        ({"items": 20}, "--items: 20 is not an integer in"),
        ({"items": 5000}, "--items: 5000"),
        ({"budget": 0}, "--budget: 0"),
        ({"seed": -1}, "--seed: -1"),
        ({"study_seeds": -1}, "--study-seeds: -1"),
    ],
)
def test_bad_options_name_the_option(values, message):
    with pytest.raises(ValueError, match=message):
        DemoOptions.from_args(argparse.Namespace(**values))


def test_cli_rejects_bad_options_with_exit_code_2(capfd):
    import main

    assert main.main(["demo", "--rounds", "0"]) == 2  # the demo runs as its own process (demo/__main__.py)
    assert "--rounds: 0" in capfd.readouterr().out


def _rounds(final: float) -> tuple:
    return (RoundResult(0, 100, 0.80, 0.90, "base", "base"), RoundResult(1, 200, final, 0.95, "new", "update model"))


def test_verdict_is_honest_when_random_wins():
    from demo.study import StrategyStats, StudySummary

    verdict = uncertainty_verdict({"margin": _rounds(0.88), "random": _rounds(0.90)})
    assert "did NOT beat random" in verdict
    assert "margin selection beat random" in uncertainty_verdict({"margin": _rounds(0.95), "random": _rounds(0.9)})
    margin = StrategyStats("margin", (100, 200), (0.8, 0.9), (0.01, 0.01), (0.9, 0.95), (0.01, 0.01), 3, 1, 6)
    random = StrategyStats("random", (100, 200), (0.8, 0.91), (0.01, 0.01), (0.9, 0.95), (0.01, 0.01))
    study = StudySummary(10, 450, 100, 100, 1, (margin, random), 1.0)
    assert (
        "Over 10 seeds at equal labels, margin did NOT beat random (more losses than wins) on accuracy: it won 3"
        in (uncertainty_verdict({"margin": _rounds(0.95), "random": _rounds(0.9)}, study))
    )


def test_verdict_says_when_the_arms_labelled_different_counts():
    margin = (RoundResult(0, 100, 0.8, 0.9, "b", "base"), RoundResult(1, 120, 0.85, 0.93, "n", "update model"))
    random = (RoundResult(0, 100, 0.8, 0.9, "b", "base"), RoundResult(1, 160, 0.86, 0.92, "n", "update model"))
    verdict = uncertainty_verdict({"margin": margin, "random": random})
    assert "margin labelled 120 items, random 160" in verdict and "DIFFERENT label counts" in verdict
    assert "at equal labels" not in verdict


def test_report_states_each_rounds_labels_rule_kappa_and_stopping_signal():
    from demo.report import decision_rule

    comparison = {
        "config": {"precision_recall": {"iou_threshold": 0.5, "min_delta": 0.01}, "wins": "all"},
        "kappa": 0.912,
        "recommendation": "continue",
        "stopping": {"reason": "kappa 0.912 < 0.99"},
    }
    rule = decision_rule(comparison)
    assert "min_delta 0.01" in rule and "no interval" in rule
    first = RoundResult(0, 100, 0.8, 0.9, "base", "base")
    later = RoundResult(
        1, 130, 0.85, 0.93, "new", "discard", 30, 45, 100, 0.912, "continue", "kappa 0.912 < 0.99", rule
    )
    rows = label_rows({"0": 0.5}, {"0": 0.6})
    summary = DemoSummary("base", "new", "discard", rows, 0.5, 0.6, runs={"margin": (first, later)}, budget=30)
    text = render_markdown(summary)
    assert "| margin | 1 | 100 | 45 | 30 | 130 | 0.850 | 0.930 | `discard` | " + rule + " | 0.912 | `continue`" in text
    assert f"(rule: {rule})" in text


def test_study_panels_count_wins_on_their_own_metric():
    import pandas as pd

    from demo.study import metric_wins

    rows = pd.DataFrame(
        {
            "seed": [0, 0, 1, 1],
            "round": [1, 1, 1, 1],
            "strategy": ["margin", "random"] * 2,
            "accuracy": [0.9, 0.8, 0.9, 0.8],
            "macro_ap": [0.7, 0.8, 0.7, 0.8],
        }
    )
    assert metric_wins(rows, "accuracy")["margin"]["wins"] == 2
    assert metric_wins(rows, "macro_ap")["margin"] == {"wins": 0, "ties": 0, "losses": 2}


def test_report_markdown_carries_the_decision_and_every_label():
    rows = label_rows({str(d): 0.5 for d in range(10)}, {str(d): 0.5 + d / 100 for d in range(10)})
    summary = DemoSummary("base", "new", "discard", rows, 0.5, 0.545, template="pipeline_configs/x.json")
    text = render_markdown(summary)
    assert "**Decision of the last margin round: `discard`**" in text
    assert "Compare Models kept `base`" in text
    assert "`pipeline_configs/x.json`" in text
    assert all(f"| {d} |" in text for d in range(10))
    assert labels_to_plot(rows, n=2) == ["9", "8"]


def test_wants_demo_reads_the_subcommand():
    assert wants_demo(["demo"]) and wants_demo(["-v", "demo", "--items", "300"])
    assert not wants_demo(["compare", "--previous", "demo"]) and not wants_demo([])


def test_isolation_keeps_dtlpy_out_of_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    code = (
        "from demo.isolation import isolate_dataloop_path\n"
        "path = isolate_dataloop_path(['demo'])\n"
        "import importlib, dtlpy\n"
        "print(importlib.import_module('dtlpy.services.service_defaults').DATALOOP_PATH == path)\n"
    )
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO)}
    env.pop("DATALOOP_PATH", None)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert list(home.iterdir()) == []  # no ~/.dataloop
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


# ------------------------------------------------------------------------------------ end to end
def _snapshot(root: Path) -> dict[str, float]:
    if not root.exists():
        return {}
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


@pytest.fixture
def connections():
    """Every address the process connects a socket to while the test runs."""
    seen: list = []
    active = [True]

    def hook(event, args):
        if active[0] and event == "socket.connect":
            seen.append(args[1])

    sys.addaudithook(hook)  # audit hooks cannot be removed; this one goes quiet after the test
    yield seen
    active[0] = False


ITEM_NODES = ("Raw Data", "Predict", "Uncertainty Gate", "Labeling", "Review", "Model Data Split", "Ground Truth")
MODEL_NODES = ("Create New Model", "Train", "Evaluate New Model", "Evaluate Base Model", "Compare Models")
SMALL = {"items": 120, "initial": 30, "arrivals": 20, "budget": 6, "rounds": 1, "study_seeds": 0, "seed": 1}


def test_reduced_demo_end_to_end(tmp_path, monkeypatch, connections):
    """One round through the platform's engine: what the platform recorded (cycles, executions per
    node, tasks, the Best Model variable) and what the report says about it."""
    from demo.run import run_demo

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    home_dataloop = Path(os.path.expanduser("~")) / ".dataloop"
    before = _snapshot(home_dataloop)
    lines: list[str] = []

    result = run_demo(DemoOptions(out=Path("out"), **SMALL), echo=lines.append, progress_bars=False)
    output = "\n".join(lines)

    # the template was created and installed once per arm, through dtlpy
    assert "pipeline_configs/active_learning_pipeline.json" in output
    counts = result.request_counts
    assert counts["POST /pipelines"] == 2 and counts["POST /pipelines/{id}/install"] == 2
    assert counts["POST /app-registry"] >= 2  # both manifests published (dpks.publish)

    runs = result.summary.runs
    assert set(runs) == {"margin", "random"}
    records = {(r.arm, r.branch): r for r in result.records}
    for arm in ("margin", "random"):
        items, model = records[(arm, "items")], records[(arm, "model")]
        nodes = {n.node: n for n in items.nodes}
        # one cycle per uploaded item; Predict and the gate ran once in each, as executions
        assert sum(items.cycles.values()) == SMALL["arrivals"]
        assert nodes["Predict"].executions == {"success": SMALL["arrivals"]}
        assert nodes["Predict"].functions == ("predict_items",)
        assert nodes["Uncertainty Gate"].executions == {"success": SMALL["arrivals"]}
        labelled = runs[arm][-1].labelled_now
        reached = runs[arm][-1].reached_labeling
        assert 0 < labelled <= SMALL["budget"] and labelled <= reached
        # the annotator completed `labelled` items in Labeling; Review approved them all; each went
        # through Model Data Split into Ground Truth; the rest still wait in the Labeling task
        assert nodes["Labeling"].statuses.get("success", 0) == labelled
        assert nodes["Labeling"].statuses.get("in-progress", 0) == reached - labelled
        assert nodes["Review"].statuses == {"success": labelled}
        assert nodes["Model Data Split"].executions == {"success": labelled}
        assert nodes["Ground Truth"].statuses == {"success": labelled}
        assert items.cycles.get("in-progress", 0) == reached - labelled
        # the cron cycle: one execution of each model-branch node, all successful
        assert model.cycles == {"success": 1}
        model_nodes = {n.node: n for n in model.nodes}
        for name in MODEL_NODES:
            assert model_nodes[name].executions == {"success": 1}, (arm, name, model_nodes[name])
        last = runs[arm][-1]
        # the Best Model variable changed exactly when Compare Models said "update model"
        changed = result.best_models[arm] != runs[arm][0].model_id
        assert changed == (last.decision == "update model") == last.best_model_changed
        assert ("Update Variables" in model_nodes) == changed
        # Compare Models recorded kappa and the stopping signal on the new model
        assert last.kappa is not None and -1.0 <= last.kappa <= 1.0
        assert last.recommendation in ("stop", "continue")
        assert "min_delta" in last.rule
    # both arms labelled the same number of items (compared at equal labels)
    assert (
        runs["margin"][-1].labelled == runs["random"][-1].labelled == SMALL["initial"] + runs["margin"][-1].labelled_now
    )

    # outputs exist, are readable pictures, and the report says what happened
    assert sorted(p.name for p in cwd.iterdir()) == ["out"]
    assert sorted(p.name for p in (cwd / "out").iterdir()) == ["learning_curve.png", "pr_curves.png", "report.md"]
    for name in ("learning_curve.png", "pr_curves.png"):
        with Image.open(cwd / "out" / name) as image:
            assert image.width >= 600 and image.height >= 300
    report = (cwd / "out" / "report.md").read_text()
    assert f"**Decision of the last margin round: `{result.decision}`** (rule: " in report
    assert "`pipeline_configs/active_learning_pipeline.json`" in report
    assert "How the label budget works under a running pipeline" in report
    assert "at equal labels" in report and "same label budget" not in report
    for arm in ("margin", "random"):
        last = runs[arm][-1]
        row = f"| {arm} | 1 | {SMALL['arrivals']} | {last.reached_labeling} | {last.labelled_now} | {last.labelled} |"
        assert row in report
        assert f"{last.kappa:.3f} | `{last.recommendation}`" in report
        assert f"{arm} round 1, items branch: {SMALL['arrivals']} cycles" in report
        assert f"{arm} round 1, model branch: 1 cycles (success 1)" in report
    assert "Predict: executions predict_items success" in report and "run time)" in report
    assert f"decision: {result.decision}" in output
    assert any(line.startswith("elapsed: ") and "target: under 120 s" in line for line in lines)

    # only the local platform was contacted, and nothing was written to ~/.dataloop
    assert connections, "the audit hook saw no connection at all"
    assert {address[0] for address in connections if isinstance(address, tuple)} <= {"127.0.0.1"}
    assert _snapshot(home_dataloop) == before


@pytest.mark.parametrize(("signal_name", "code"), [("SIGTERM", 128 + 15), ("SIGINT", 130)])
def test_a_stopped_demo_leaves_nothing_in_the_temp_folder(tmp_path, signal_name, code):
    """``python main.py demo`` stopped with SIGTERM or Ctrl-C (SIGINT) once the platform runs: its
    worker processes and every temporary folder are gone (issue 23)."""
    import signal
    import time

    tmp, home = tmp_path / "tmp", tmp_path / "home"
    tmp.mkdir()
    home.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "HOME": str(home)}
    env.pop("DATALOOP_PATH", None)
    command = [sys.executable, str(REPO / "main.py"), "demo", "--out", str(tmp_path / "out")]
    command += [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen = []
    try:
        for line in process.stdout:  # wait until the base model trains: the engine's workers run
            seen.append(line)
            if line.startswith("[ 4]"):
                break
        time.sleep(1.0)
        process.send_signal(getattr(signal, signal_name))
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert any(line.startswith("[ 4]") for line in seen), "".join(seen)
    assert process.returncode == code
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert left == [], left
    assert list(home.iterdir()) == []


def test_png_items_decode_like_the_source():
    data = load_digits_images(50, seed=0)
    png = encode_png(data.images[0])
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (32, 32)
