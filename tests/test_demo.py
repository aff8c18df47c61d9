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
from demo.data import LABELS, decode_png, encode_png, image_features, load_digits_images, plan_pools
from demo.isolation import wants_demo
from demo.report import DemoSummary, RoundResult, label_rows, labels_to_plot, render_markdown, uncertainty_verdict
from demo.run import DemoOptions, subset_filter, top_k_records

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


def test_subset_filters_are_the_packaged_ones():
    from nodes.common.defaults import load_subset_filter

    assert subset_filter("train") == load_subset_filter("train")


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
    assert "Over 10 seeds, margin did NOT beat random (more losses than wins): it won 3, tied 1 and lost 6" in (
        uncertainty_verdict({"margin": _rounds(0.95), "random": _rounds(0.9)}, study)
    )


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


ITEM_BRANCH = [
    ("Raw Data", {"item"}),
    ("Predict", {"item"}),
    ("Select for Labeling", None),
    ("Uncertainty Gate", {"label", "skip"}),
    ("Labeling", {"completed"}),
    ("Review", {"approved"}),
    ("Model Data Split", {"train", "validation", "test"}),
    ("Ground Truth", {"item"}),
]
MODEL_BRANCH = [
    ("Create New Model", {"new_model"}),
    ("Train", {"model"}),
    ("Evaluate Base Model", {"model"}),
    ("Evaluate New Model", {"model"}),
    ("Compare Models", {"update model", "discard"}),
]


def test_reduced_demo_end_to_end(tmp_path, monkeypatch, connections):
    from demo.run import run_demo

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    home_dataloop = Path(os.path.expanduser("~")) / ".dataloop"
    before = _snapshot(home_dataloop)
    lines: list[str] = []

    result = run_demo(
        DemoOptions(items=300, rounds=1, budget=50, out=Path("out"), seed=1, study_seeds=0),
        echo=lines.append,
        progress_bars=False,
    )
    output = "\n".join(lines)

    # the output names the template it ran, and the pipelines were created from it and installed
    assert "pipeline_configs/active_learning_pipeline.json" in output
    counts = result.request_counts
    assert counts["POST /pipelines"] == 2 and counts["POST /pipelines/{id}/install"] == 2

    # each arm ran the item branch, then the model branch, in the template's order, with its actions
    for arm in ("margin", "random"):
        runs = [r for r in result.node_runs if r.pipeline.endswith(f"({arm})")]
        order = [r.node for r in runs]
        expected = [n for n, _ in ITEM_BRANCH] + [n for n, _ in MODEL_BRANCH]
        decision = runs[order.index("Compare Models")].actions
        if "update model" in decision:
            expected.append("Update Variables")
        assert order == expected, arm
        for name, actions in ITEM_BRANCH + MODEL_BRANCH:
            run = runs[order.index(name)]
            if actions is not None:
                assert set(run.actions) <= actions, (arm, name, run.actions)
            assert f"{name} [" in output
        by_name = {r.node: r for r in runs}
        assert by_name["Select for Labeling"].actions == {f"{arm}, budget 50: chosen": 50}
        labelled = by_name["Labeling"].actions["completed"]
        assert labelled == by_name["Uncertainty Gate"].actions.get("label", 0) > 0
        assert sum(by_name["Model Data Split"].actions.values()) == labelled
        assert by_name["Ground Truth"].actions == {"item": labelled}

    # tags written: Select for Labeling tags its choice, the gate records, Data Split tags each
    # labelled item (item PATCHes), and Ground Truth clones them into the Ground Truth dataset
    labelled_total = sum(r.actions.get("completed", 0) for r in result.node_runs if r.node == "Labeling")
    assert counts["POST /items/{id}/clone"] == labelled_total
    assert counts["PATCH /items/{id}"] >= 2 * labelled_total

    # the Best Model variable follows Compare Models' decision
    margin_compare = [r for r in result.node_runs if r.node == "Compare Models" and r.pipeline.endswith("(margin)")][0]
    if "update model" in margin_compare.actions:
        assert result.best_models["margin"] != result.summary.runs["margin"][0].model
        assert counts["PATCH /pipelines/{id}/variables"] >= 1
    assert result.decision in ("update model", "discard")

    # outputs exist, are readable pictures, and the report's decision is the printed one
    assert sorted(p.name for p in cwd.iterdir()) == ["out"]
    assert sorted(p.name for p in (cwd / "out").iterdir()) == ["learning_curve.png", "pr_curves.png", "report.md"]
    for name in ("learning_curve.png", "pr_curves.png"):
        with Image.open(cwd / "out" / name) as image:
            assert image.width >= 600 and image.height >= 300
    report = (cwd / "out" / "report.md").read_text()
    assert f"**Decision of the last margin round: `{result.decision}`**" in report
    assert "`pipeline_configs/active_learning_pipeline.json`" in report
    assert f"decision: {result.decision}" in output
    assert any(line.startswith("elapsed: ") for line in lines)
    runs = result.summary.runs
    assert set(runs) == {"margin", "random"}
    assert [r.labelled for r in runs["margin"]][0] == [r.labelled for r in runs["random"]][0] == 100
    assert len(result.summary.rows) == 10

    # only the local platform was contacted, and nothing was written to ~/.dataloop
    assert connections, "the audit hook saw no connection at all"
    assert {address[0] for address in connections if isinstance(address, tuple)} <= {"127.0.0.1"}
    assert _snapshot(home_dataloop) == before


def test_png_items_decode_like_the_source():
    data = load_digits_images(50, seed=0)
    png = encode_png(data.images[0])
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (32, 32)


def test_the_context_of_a_custom_node_is_the_installed_template_node(platform, project):
    import json

    from demo.pipeline_runner import InstalledPipeline

    body = json.loads((REPO / "pipeline_configs" / "active_learning_pipeline.json").read_text())
    body["projectId"] = project.id
    installed = InstalledPipeline.install(project, body)
    split = next(n for n in body["nodes"] if n.get("metadata", {}).get("pipelineNodeName") == "dataSplit")

    context = installed.context(split["id"])

    assert context.node.node_id == split["id"] and context.pipeline.id == installed.id
    assert context.node.metadata["customNodeConfig"] == split["metadata"]["customNodeConfig"]
    assert context.pipeline.status == "Installed"
