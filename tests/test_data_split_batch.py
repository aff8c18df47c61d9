"""Batch mode of the Model Data Split node (``split_dataset`` and ``python main.py split``) with the
real dtlpy client on LocalPlatform: exact sizes, bulk writes, dry run, stickiness, stratification,
grouping."""

from __future__ import annotations

from collections import Counter

import dtlpy as dl
import pytest

import main
from nodes.data_split import SplitConfig, existing_subset, split_dataset
from tests.helpers import unreachable_platform_setup

DEFAULT = SplitConfig.default()
QUERY = "POST /datasets/{id}/query"


def add(platform, dataset, n, prefix="img", tags=None, user=None, directory="/"):
    entries = []
    for k in range(n):
        metadata = {}
        if tags is not None:
            metadata["system"] = {"tags": dict(tags)}
        if user is not None:
            metadata["user"] = user(k)
        entries.append({"name": f"{prefix}{k:05d}.jpg", "dir": directory, "metadata": metadata})
    return platform.add_items(dataset, entries)


def server_subsets(platform, dataset, config=DEFAULT):
    return {
        i["id"]: existing_subset(i["metadata"].get("system", {}).get("tags"), config)
        for i in platform.items_json(dataset.id)
    }


def test_exact_sizes_with_one_bulk_request_per_subset_per_page(platform, dataset):
    ids = add(platform, dataset, 1100)
    summary = split_dataset(dataset, None, show_progress=False)
    assert summary.per_subset == {"train": 880, "validation": 110, "test": 110}
    assert summary.targets == summary.per_subset
    # 2 listing pages of 1,000 + one bulk update per subset -- never one request per item
    assert platform.write_count() == 3 == summary.write_requests
    assert platform.request_counts == Counter({QUERY: 2 + 3})
    assert server_subsets(platform, dataset) == summary.assignments
    assert set(summary.assignments) == set(ids)
    assert "880" in summary.table() and "wrote tags of 1100" in summary.table()


def test_bulk_requests_are_chunked(platform, dataset):
    add(platform, dataset, 500)
    summary = split_dataset(dataset, None, bulk_size=100)
    # train 400 -> 4 chunks, validation 50 -> 1, test 50 -> 1
    assert platform.write_count() == 6 == summary.write_requests
    assert server_subsets(platform, dataset) == summary.assignments


def test_rerun_writes_nothing_and_keeps_every_subset(platform, dataset):
    add(platform, dataset, 300)
    first = split_dataset(dataset, {"groups": [{"name": "a", "distribution": 50}, {"name": "b", "distribution": 50}]})
    platform.reset_counts()
    again = split_dataset(dataset, {"groups": [{"name": "a", "distribution": 50}, {"name": "b", "distribution": 50}]})
    assert platform.write_count() == 0
    assert again.assignments == first.assignments
    assert (again.sticky, again.changed, again.write_requests) == (300, 0, 0)


def test_dry_run_writes_nothing_and_predicts_the_real_run(platform, dataset):
    add(platform, dataset, 120)
    dry = split_dataset(dataset, None, seed=7, dry_run=True)
    assert platform.write_count() == 0
    assert set(server_subsets(platform, dataset).values()) == {None}
    # one request count: the table's, the log's and the real run's
    assert dry.changed == 120 and dry.write_requests == 3 and "dry run" in dry.table()
    assert "would write tags of 120 in 3 bulk requests (dry run: nothing written)" in dry.table()
    real = split_dataset(dataset, None, seed=7)
    assert real.assignments == dry.assignments
    assert real.write_requests == dry.write_requests == platform.write_count()
    other_seed = split_dataset(dataset, None, seed=8, dry_run=True, reassign=True)
    assert other_seed.assignments != dry.assignments
    assert Counter(other_seed.assignments.values()) == Counter(dry.assignments.values())


def test_tagged_items_are_sticky_unless_reassign(platform, dataset):
    tagged = add(platform, dataset, 100, prefix="t", tags={"test": True, "reviewed": True})
    free = add(platform, dataset, 400, prefix="f", tags={"train": False})
    summary = split_dataset(dataset, None)
    assert all(summary.assignments[i] == "test" for i in tagged)
    assert summary.sticky == 100 and summary.changed == 400
    items = {i["id"]: i["metadata"]["system"]["tags"] for i in platform.items_json(dataset.id)}
    assert all(items[i] == {"test": True, "reviewed": True} for i in tagged)  # untouched, other tags kept
    assert all(existing_subset(items[i], DEFAULT) == summary.assignments[i] for i in free)
    assert all(items[i].get("train") is not False or summary.assignments[i] != "train" for i in free)

    platform.reset_counts()
    moved = split_dataset(dataset, None, reassign=True)
    assert moved.per_subset == {"train": 400, "validation": 50, "test": 50}  # exact again
    assert server_subsets(platform, dataset) == moved.assignments
    # a moved item loses its old membership (the bulk endpoint stores null for removed tags)
    items = {i["id"]: i["metadata"]["system"]["tags"] for i in platform.items_json(dataset.id)}
    for item_id in tagged:
        if moved.assignments[item_id] != "test":
            assert items[item_id]["test"] is None and items[item_id]["reviewed"] is True


def test_custom_filters_limit_the_split(platform, dataset):
    inside = add(platform, dataset, 30, prefix="a", directory="/keep")
    add(platform, dataset, 20, prefix="b", directory="/other")
    given = dl.Filters(field="dir", values="/keep")
    before = given.prepare()
    summary = split_dataset(dataset, None, filters=given)
    assert given.prepare() == before  # the caller's filter is not modified
    assert set(summary.assignments) == set(inside)
    assert sum(1 for s in server_subsets(platform, dataset).values() if s) == 30
    # a raw DQL filter (custom_filter) is walked with dtlpy's own paging
    custom = dl.Filters(custom_filter={"filter": {"$and": [{"dir": "/keep"}, {"hidden": False}]}})
    again = split_dataset(dataset, None, filters=custom, dry_run=True)
    assert again.assignments == summary.assignments and again.changed == 0


def test_stratify_by_label_balances_every_label(platform, dataset):
    ids = add(platform, dataset, 24)
    labels = {}
    for k, item_id in enumerate(ids):
        item = dataset.items.get(item_id=item_id)
        builder = item.annotations.builder()
        names = ["cat"] if k < 18 else ["dog"]
        for name in names:
            builder.add(annotation_definition=dl.Box(top=0, left=0, bottom=5, right=5, label=name))
        item.annotations.upload(builder)
        labels[item_id] = names
    platform.reset_counts()
    config = {"groups": [{"name": "train", "distribution": 50}, {"name": "test", "distribution": 50}]}
    summary = split_dataset(dataset, config, stratify_by="label")
    assert summary.per_label == {"cat": {"train": 9, "test": 9}, "dog": {"train": 3, "test": 3}}
    assert summary.per_subset == {"train": 12, "test": 12}
    # one item page + one dataset-level annotation page + 2 bulk writes; no per-item listing
    assert platform.request_counts == Counter({QUERY: 4})
    assert platform.write_count() == 2
    assert "cat" in summary.table()


def test_group_by_keeps_equal_values_together(platform, dataset):
    add(platform, dataset, 90, user=lambda k: {"patient": f"p{k % 15}"})
    add(platform, dataset, 5, prefix="nopatient")
    summary = split_dataset(dataset, None, group_by="metadata.user.patient", seed=3)
    by_patient = {}
    for item in platform.items_json(dataset.id):
        patient = item["metadata"].get("user", {}).get("patient")
        if patient:
            by_patient.setdefault(patient, set()).add(summary.assignments[item["id"]])
    assert len(by_patient) == 15 and all(len(s) == 1 for s in by_patient.values())
    assert server_subsets(platform, dataset) == summary.assignments
    assert "5 items have no metadata.user.patient" in summary.table()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"groups": [{"name": "a", "distribution": 90}]}}, r"customNodeConfig\.groups: 1 given"),
        ({"stratify_by": "color"}, r"stratify_by: 'color' is not supported"),
        ({"group_by": "metadata.user.$where"}, r"group_by: 'metadata.user.\$where' is not a dotted field"),
        ({"stratify_by": "label", "group_by": "metadata.user.x"}, r"use one of them"),
        ({"seed": -1}, r"seed: -1 is not an integer >= 0"),
        ({"bulk_size": 5000}, r"bulk_size: 5000 is not an integer from 1 to 1000"),
    ],
)
def test_bad_batch_arguments_raise_before_any_request(platform, dataset, kwargs, message):
    add(platform, dataset, 3)
    kwargs = dict(kwargs)  # the parametrized dict is shared by every run of this case (both null readings)
    config = kwargs.pop("config", None)
    with pytest.raises(ValueError, match=message):
        split_dataset(dataset, config, **kwargs)
    assert platform.request_counts == Counter()


def test_cli_split_dry_run_then_real(platform, project, dataset, capsys):
    add(platform, dataset, 50)
    argv = ["split", "--project", project.name, "--dataset", dataset.name, "--subsets", "train=60,test=40"]
    assert main.main([*argv, "--dry-run", "--seed", "4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing written" in out and "30" in out and "20" in out
    assert platform.write_count() == 0
    assert main.main([*argv, "--seed", "4", "--no-progress"]) == 0
    assert Counter(server_subsets(platform, dataset, SplitConfig.from_subsets_arg("train=60,test=40")).values()) == {
        "train": 30,
        "test": 20,
    }


def test_cli_rejects_bad_subsets_without_writing(platform, project, dataset, capsys):
    add(platform, dataset, 5)
    code = main.main(["split", "--project", project.name, "--dataset", dataset.name, "--subsets", "train=80,test=30"])
    assert code == 2
    assert "--subsets.groups[*].distribution: 80 + 30 = 110, not 100" in capsys.readouterr().err
    assert platform.write_count() == 0 and platform.request_counts == Counter()


@pytest.mark.parametrize(("flag", "value"), [("--project", "no-such-project"), ("--dataset", "no-such-dataset")])
def test_cli_names_a_missing_project_or_dataset(platform, project, dataset, capsys, flag, value):
    names = {"--project": project.name, "--dataset": dataset.name, flag: value}
    argv = ["split", "--project", names["--project"], "--dataset", names["--dataset"], "--no-progress"]
    assert main.main(argv) == 2
    assert f"{flag}: '{value}' is not the name or id of" in capsys.readouterr().err
    assert platform.write_count() == 0


def test_cli_rejects_bad_options_before_looking_up_the_dataset(platform, capsys):
    argv = ["split", "--project", "p", "--dataset", "d", "--group-by", "metadata.$where", "--no-progress"]
    assert main.main(argv) == 2
    assert "group_by: 'metadata.$where' is not a dotted field name" in capsys.readouterr().err
    assert platform.request_counts == Counter()


def _uninterrupted(dataset, split_kwargs) -> dict:
    return split_dataset(dataset, None, dry_run=True, show_progress=False, **split_kwargs).assignments


@pytest.mark.parametrize(
    "split_kwargs",
    [{"stratify_by": "label"}, {"group_by": "metadata.user.patient"}, {}],
    ids=["stratified", "grouped", "exact"],
)
def test_interrupted_batch_rerun_matches_an_uninterrupted_run_in_every_mode(platform, dataset, split_kwargs):
    """Bulk requests of 20 items; the 3rd write fails with a 500 (not retried): the rerun re-decides
    the items the partial run tagged (they carry its run marker) and ends on the uninterrupted result."""
    ids = add(platform, dataset, 120, user=lambda k: {"patient": f"p{k % 17}"})
    labels = ["cat", "dog", "bird"]
    for k, item_id in enumerate(ids[:90]):
        boxes = [{"type": "box", "label": labels[k % 3], "coordinates": [{"x": 1, "y": 1}, {"x": 5, "y": 5}]}]
        if k % 4 == 0:
            boxes.append({"type": "class", "label": labels[(k + 1) % 3], "coordinates": []})
        platform.store.create_annotations(item_id, boxes)
    expected = _uninterrupted(dataset, split_kwargs)
    platform.reset_counts()
    listing_pages = 2 if split_kwargs.get("stratify_by") else 1
    original = platform.log.take_failure
    seen = {"n": 0}

    def fail_third_write(method, path):
        if method == "POST" and "/query" in path:
            seen["n"] += 1
            if seen["n"] == listing_pages + 3:
                platform.fail_next("POST", r"/datasets/[^/]+/query", status=500, times=1)
        return original(method, path)

    platform.log.take_failure = fail_third_write
    try:
        with pytest.raises(dl.exceptions.ExceptionMain, match="500"):
            split_dataset(dataset, None, show_progress=False, bulk_size=20, **split_kwargs)
    finally:
        platform.log.take_failure = original
    partial = server_subsets(platform, dataset)
    assert sum(s is not None for s in partial.values()) == 40  # two bulk requests landed
    marks = {i["id"]: i["metadata"]["user"].get("activeLearning") for i in platform.items_json(dataset.id)}
    assert sum(m is not None for m in marks.values()) == 40
    rerun = split_dataset(dataset, None, show_progress=False, bulk_size=20, **split_kwargs)
    assert rerun.assignments == expected
    assert server_subsets(platform, dataset) == expected
    # other user metadata untouched; every item now carries this run's marker
    final = platform.items_json(dataset.id)
    assert all(i["metadata"]["user"]["patient"].startswith("p") for i in final)
    assert {i["metadata"]["user"]["activeLearning"]["split"] for i in final} == {
        f"{rerun.fingerprint}:{s}" for s in set(expected.values())
    }
    platform.reset_counts()
    assert split_dataset(dataset, None, show_progress=False, **split_kwargs).changed == 0
    assert platform.write_count() == 0


class _KillAtWrite:
    """Fails the ``n``-th bulk write (a ``POST /datasets/{id}/query`` after the listing) with a 500,
    which dtlpy does not retry: the run stops there, as if killed between two writes."""

    def __init__(self, platform, listing_requests: int, n: int) -> None:
        self.platform, self.fail_at, self.seen = platform, listing_requests + n, 0
        self.original = platform.log.take_failure

    def __enter__(self):
        def counting(method, path):
            if method == "POST" and "/query" in path:
                self.seen += 1
                if self.seen == self.fail_at:
                    self.platform.fail_next("POST", r"/datasets/[^/]+/query", status=500, times=1)
            return self.original(method, path)

        self.platform.log.take_failure = counting
        return self

    def __exit__(self, *exc):
        self.platform.log.take_failure = self.original
        return False


@pytest.mark.parametrize(
    "split_kwargs",
    [
        {"stratify_by": "label"},
        {"group_by": "metadata.user.patient"},
        {},
        {"group_by": "metadata.user.patient", "reassign": True},
    ],
    ids=["stratified", "grouped", "exact", "grouped-reassign"],
)
@pytest.mark.parametrize("trial", range(2))
def test_killed_at_random_writes_then_rerun_ends_like_an_uninterrupted_run(platform, dataset, split_kwargs, trial):
    """Every mode, killed at two random bulk writes in a row (seeded), then run to the end: the
    items, their tags and markers are those of one uninterrupted run, and one more run writes nothing.
    Items start in all states: untagged, tagged by hand (sticky), without a group value."""
    import random

    rng = random.Random(f"{trial}-{sorted(split_kwargs.items())}")
    ids = add(platform, dataset, 150, user=lambda k: {"patient": f"p{k % 23}"} if k % 7 else {})
    for item_id in ids[::11]:
        platform.store.patch_item(item_id, {"metadata": {"system": {"tags": {"test": True}}}}, system=True)
    labels = ["cat", "dog", "bird"]
    for k, item_id in enumerate(ids[:120]):
        platform.store.create_annotations(item_id, [{"type": "class", "label": labels[(k * k) % 3], "coordinates": []}])
    run = dict(show_progress=False, bulk_size=10, **split_kwargs)
    expected = split_dataset(dataset, None, dry_run=True, **run)
    listing = 2 if split_kwargs.get("stratify_by") else 1
    writes = expected.write_requests
    assert writes > 3
    for _kill in range(2):
        n = rng.randrange(1, writes + 1)
        with _KillAtWrite(platform, listing, n), pytest.raises(dl.exceptions.ExceptionMain, match="500"):
            split_dataset(dataset, None, **run)
        partial = split_dataset(dataset, None, dry_run=True, **run)
        writes = partial.write_requests
        if writes == 0:
            break
    rerun = split_dataset(dataset, None, **run)
    assert rerun.assignments == expected.assignments
    assert server_subsets(platform, dataset) == expected.assignments
    final = {i["id"]: i for i in platform.items_json(dataset.id)}
    assert {i: final[i]["metadata"]["user"].get("patient") for i in ids} == {
        i: (f"p{k % 23}" if k % 7 else None) for k, i in enumerate(ids)
    }
    platform.reset_counts()
    assert split_dataset(dataset, None, **run).changed == 0
    assert platform.write_count() == 0


# ------------------------------------------------------------------------------------ not logged in / unreachable


def _split_isolated(tmp_path, setup: str):
    """``python main.py split ...`` in a fresh process with its own, empty dtlpy folder and ``setup``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(main.__file__).resolve().parent
    home = tmp_path / "home"
    (home / "dtlpy").mkdir(parents=True)
    env = dict(os.environ, HOME=str(home), DATALOOP_PATH=str(home / "dtlpy"), PYTHONPATH=str(root))
    argv = ["split", "--project", "p", "--dataset", "d", "--no-progress"]
    script = "import sys\n" + setup + f"\nimport main\nsys.exit(main.main({argv!r}))\n"
    return subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


def _one_error_line(result, *names: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert all(name in lines[0] for name in names), lines[0]
    assert len(lines[0]) < 1024


def test_cli_not_logged_in_prints_one_line_saying_how_to_log_in(tmp_path):
    _one_error_line(_split_isolated(tmp_path, ""), "not logged in", "dlp login", "local platform")


def test_cli_unreachable_platform_prints_one_line_saying_how_to_start_it(tmp_path):
    setup = unreachable_platform_setup()
    _one_error_line(_split_isolated(tmp_path, setup), "not reachable", "dlp login", "local platform")
