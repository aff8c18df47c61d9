"""Issue 23, Compare Models: hostile command lines and inputs end as documented.

``python main.py compare``: ``--config`` reads only a regular file within its size limit,
``--out`` is created and proved writable (a probe file, removed) before any platform request,
and "not logged in" / "platform unreachable" print one line saying how to log in or start the
local platform (exit 2, no traceback). The node: every prediction of a model malformed is refused
naming the skipped annotations; entities of the wrong type are refused naming the input.

Each case counts toward one line in pytest's terminal summary, as tests/test_hostile.py counts:
``compare hostile: N tried, N as documented, 0 writes before a refusal``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dtlpy as dl
import pytest

import main
from tests.helpers import TEST_TAGS, Totals, box, run_compare, unreachable_platform_setup

ROOT = Path(__file__).resolve().parent.parent
MAX_MESSAGE = 1024
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOTALS = Totals("compare hostile: {tried} tried, {ok} as documented, {writes} writes before a refusal")


@pytest.fixture(scope="module", autouse=True)
def _print_totals(request):
    TOTALS.print_at_end(request.config, "compare-hostile-totals")


def _writes(platform) -> list[str]:
    return [
        f"{r.method} {r.route} -> {r.status}"
        for r in platform.requests
        if r.wrote or (r.method in WRITE_METHODS and not r.route.endswith("/query") and r.status < 400)
    ]


class Case:
    """Counts one hostile case: ``done(ok, writes)`` once its outcome is checked."""

    def __init__(self) -> None:
        TOTALS.tried += 1

    def done(self, writes: int = 0) -> None:
        TOTALS.ok += 1
        TOTALS.writes += writes


@pytest.fixture
def case():
    return Case()


def _refused(capsys, code: int, *names: str) -> str:
    """Exit 2 with one ``error:`` line under 1 kB that names every entry of ``names``."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert len(lines[0]) < MAX_MESSAGE and "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _evaluated(platform, project, dataset, n=3, new_annotation=None):
    previous = platform.create_model(project, "cli-previous", dataset=dataset)
    new = platform.create_model(project, "cli-new", dataset=dataset)
    ids = platform.add_items(dataset, [{"name": f"h{i}.jpg", "metadata": TEST_TAGS} for i in range(n)])
    for item_id in ids:
        annotations = [box("cat", 10, 10), box("cat", 40, 10, model=previous, confidence=0.5)]
        annotations.append(new_annotation(new) if new_annotation else box("cat", 10, 10, model=new, confidence=0.9))
        platform.store.create_annotations(item_id, annotations)
    return previous, new, ids


def _compare_argv(previous_id: str, new_id: str, *extra: str) -> list[str]:
    return ["compare", "--previous", previous_id, "--new", new_id, *extra]


IDS = ("65f1c0ffee00000000000001", "65f1c0ffee00000000000002")

# ------------------------------------------------------------------------------------ --config


def test_config_from_dev_zero_is_refused_unread(platform, capsys, tmp_path, case):
    code = main.main(_compare_argv(*IDS, "--config", "/dev/zero", "--out", str(tmp_path / "r")))
    _refused(capsys, code, "--config", "character device", "regular file")
    assert not (tmp_path / "r").exists() and platform.request_counts == {}
    case.done()


def test_config_from_a_fifo_is_refused_without_opening_it(platform, capsys, tmp_path, case):
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)  # opening it would block until a writer came
    code = main.main(_compare_argv(*IDS, "--config", str(fifo), "--out", str(tmp_path / "r")))
    _refused(capsys, code, "--config", "FIFO")
    assert platform.request_counts == {}
    case.done()


def test_config_larger_than_its_limit_is_refused(platform, capsys, tmp_path, case):
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(3_000_000)  # sparse: 3 MB of zero bytes, above the 2 MB limit
    code = main.main(_compare_argv(*IDS, "--config", str(big), "--out", str(tmp_path / "r")))
    _refused(capsys, code, "--config", "bytes")
    assert platform.request_counts == {}
    case.done()


def test_config_reader_reads_at_most_its_limit():
    from nodes.common.cli import read_config_text

    with pytest.raises(ValueError, match="more than the 10 bytes allowed"):
        read_config_text("/proc/self/status", max_bytes=10)  # a regular file whose size reads 0
    assert read_config_text("/proc/self/status", max_bytes=1_000_000).startswith("Name:")


# ------------------------------------------------------------------------------------ --out


def test_out_that_nobody_can_write_fails_before_any_request(platform, project, dataset, capsys, case):
    if not Path("/sys").is_dir():
        pytest.skip("no /sys to stand for a place nobody may write")
    previous, new, _ = _evaluated(platform, project, dataset)
    platform.reset_counts()
    code = main.main(_compare_argv(previous.id, new.id, "--dataset", dataset.id, "--out", "/sys/compare-report"))
    _refused(capsys, code, "--out", "not writable")
    assert platform.request_counts == {}  # refused before the first request
    case.done(len(_writes(platform)))


def test_out_is_proved_by_writing_not_by_permission_bits(platform, project, dataset, capsys, tmp_path, case):
    previous, new, _ = _evaluated(platform, project, dataset)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = main.main(_compare_argv(previous.id, new.id, "--dataset", dataset.id, "--out", str(locked / "r")))
        if os.geteuid() == 0:  # root may write there: the report is written
            assert code == 0 and (locked / "r" / "report.md").is_file()
            capsys.readouterr()
        else:
            _refused(capsys, code, "--out", "not writable")
            assert platform.write_count() == 0
        assert not [p for p in (locked / "r").glob(".write-probe-*")] if (locked / "r").exists() else True
    finally:
        locked.chmod(0o755)
    case.done()


def test_out_folder_made_for_a_refused_run_is_removed(platform, project, dataset, capsys, tmp_path, case):
    previous, _new, _ = _evaluated(platform, project, dataset)
    out = tmp_path / "a" / "b"
    platform.reset_counts()
    code = main.main(_compare_argv(previous.id, "65f1c0ffee0000000000beef", "--out", str(out)))
    _refused(capsys, code, "--new", "not found")
    assert not (tmp_path / "a").exists()  # created and probed first, removed with the refusal
    case.done(len(_writes(platform)))


def test_out_probe_leaves_only_the_report(platform, project, dataset, capsys, tmp_path, case):
    previous, new, _ = _evaluated(platform, project, dataset)
    out = tmp_path / "report"
    assert main.main(_compare_argv(previous.id, new.id, "--dataset", dataset.id, "--out", str(out))) == 0
    assert sorted(p.name for p in out.iterdir()) == ["pr_curves.png", "report.md"]
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "## Stopping signal" in text and "agreement: kappa" in text
    assert "stopping signal (round 1): continue" in capsys.readouterr().out
    case.done()


# ------------------------------------------------------------------------------------ not logged in / unreachable


def _run_isolated(tmp_path: Path, setup: str) -> subprocess.CompletedProcess:
    """``main.main(compare ...)`` in a fresh process with its own, empty dtlpy folder and ``setup``."""
    home = tmp_path / "home"
    (home / "dtlpy").mkdir(parents=True)
    env = dict(os.environ, HOME=str(home), DATALOOP_PATH=str(home / "dtlpy"), PYTHONPATH=str(ROOT))
    script = (
        "import sys\n" + setup + "\nimport main\n"
        f"sys.exit(main.main({_compare_argv(*IDS, '--out', str(tmp_path / 'out'))!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


def _one_line(result: subprocess.CompletedProcess, *names: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert len(lines[0]) < MAX_MESSAGE
    return lines[0]


def test_not_logged_in_prints_how_to_log_in(tmp_path, case):
    result = _run_isolated(tmp_path, "")
    _one_line(result, "not logged in", "dlp login", "python main.py platform")
    assert not (tmp_path / "out").exists()
    case.done()


def test_unreachable_platform_prints_how_to_start_it(tmp_path, case):
    setup = unreachable_platform_setup()
    result = _run_isolated(tmp_path, setup)
    _one_line(result, "not reachable", "python main.py platform", "dlp login")
    assert not (tmp_path / "out").exists()
    case.done()


# ------------------------------------------------------------------------------------ malformed predictions


def _malformed(model) -> dict:
    annotation = box("cat", 10, 10, model=model, confidence=0.9)
    annotation["coordinates"] = [{"x": None, "y": 0}, {"x": 5, "y": 5}]
    return annotation


def test_every_prediction_malformed_is_refused_naming_the_skipped_annotations(platform, project, dataset, case):
    previous, new, ids = _evaluated(platform, project, dataset, n=5, new_annotation=_malformed)
    skipped = [
        doc["id"]
        for doc in platform.annotations_json(dataset.id)
        if ((doc.get("metadata") or {}).get("user") or {}).get("model", {}).get("model_id") == new.id
    ]
    platform.reset_counts()
    with pytest.raises(ValueError) as error:
        run_compare(previous, new, dataset)
    message = str(error.value)
    assert "new model" in message and "malformed and skipped" in message and "all 5" in message
    assert skipped[0] in message and "coordinate x None is not a finite number" in message
    assert "and 2 more" in message and len(message.encode("utf-8")) < 1000
    assert _writes(platform) == []
    case.done()


def test_cli_refusal_for_malformed_predictions_names_them_in_one_line(
    platform, project, dataset, capsys, tmp_path, case
):
    previous, new, _ = _evaluated(platform, project, dataset, n=2, new_annotation=_malformed)
    platform.reset_counts()
    code = main.main(_compare_argv(previous.id, new.id, "--dataset", dataset.id, "--out", str(tmp_path / "r")))
    _refused(capsys, code, "malformed and skipped", "annotation ")
    assert not (tmp_path / "r").exists() and _writes(platform) == []
    case.done()


# ------------------------------------------------------------------------------------ wrong entity types


@pytest.mark.parametrize(
    ("which", "expected"),
    [("previous_model", "previous_model"), ("new_model", "new_model"), ("dataset", "dataset")],
)
@pytest.mark.parametrize("kind", ["id string", "dict", "wrong entity"])
def test_entities_of_the_wrong_type_are_refused(platform, project, dataset, which, expected, kind, case):
    previous, new, _ = _evaluated(platform, project, dataset, n=1)
    inputs = {"previous_model": previous, "new_model": new, "dataset": dataset}
    wrong = {"id string": inputs[which].id, "dict": inputs[which].to_json(), "wrong entity": None}[kind]
    if kind == "wrong entity":
        wrong = previous if which == "dataset" else dataset
    inputs[which] = wrong
    platform.reset_counts()
    with pytest.raises(ValueError) as error:
        main.ServiceRunner().compare_models(**inputs, compare_config=None, progress=None, context=None)
    message = str(error.value)
    assert expected in message and len(message) < MAX_MESSAGE
    assert isinstance(inputs["dataset"], dl.Dataset) or which == "dataset"
    assert _writes(platform) == []
    case.done()
