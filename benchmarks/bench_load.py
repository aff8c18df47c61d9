"""Load: concurrent Model Data Split executions on LocalPlatform, as the manifest runs them.

A pipeline runs one ``data_split`` execution per item, several at once in one service. Here
``--workers`` threads (default 8) share dtlpy's single client (one ``requests`` session) and
run ``main.ServiceRunner().data_split`` for ``--items`` items (default 10,000), each execution
with its own ``dl.Context`` (own execution id, node config read from the pipeline) and its own
progress recorder. Some items already carry other tags (``reviewed``) that must survive,
some a subset tag (kept, no write), and some a model prediction (stripped).

Checked after the run (exit code 1 on any failure): every item carries exactly one configured
subset tag, the one its progress action reported and :func:`nodes.data_split.subset_for_item`
predicts (sticky ones keep theirs); no other tag was lost; one ``PATCH /items/{id}`` per item
that needed a tag (no lost or duplicated update); no request failed.

Printed: items per second with 1 worker (the reference, measured in the same run on
``--reference-items``) and with ``--workers`` workers, and their ratio; then the same number of
items split in batch mode (``split_dataset``: paged listing + bulk updates) for comparison.
Client and server share one Python process here (one GIL), so the worker ratio shows that
concurrency costs nothing and loses nothing, not the speed-up of a real, remote platform.

Usage: ``.venv/bin/python benchmarks/bench_load.py [--items 10000] [--workers 8] [--reference-items 1000]``.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# isort: off
import emulator  # noqa: E402,F401  (sets DATALOOP_PATH before dtlpy is imported)
import dtlpy as dl  # noqa: E402

import main  # noqa: E402
from emulator import LocalPlatform, RecordingProgress, make_labels  # noqa: E402
from nodes.data_split import SplitConfig, subset_for_item  # noqa: E402

# isort: on

logger = logging.getLogger(__name__)

NODE_CONFIG = {
    "name": "Model Data Split",
    "groups": [
        {"name": "train", "distribution": 80},
        {"name": "validation", "distribution": 10},
        {"name": "test", "distribution": 10},
    ],
    "itemMetadata": True,
}
PREDICTION = {"user": {"model": {"name": "yolo", "model_id": "model-1", "confidence": 0.9}}}
PATCH_ITEM = "PATCH /items/{id}"
PUT_ANNOTATION = "PUT /annotations/{id}"


@dataclass
class LoadResult:
    """What one load run did and found (``problems`` empty means every check passed)."""

    items: int
    workers: int
    seconds: float
    requests: Counter
    problems: list[str] = field(default_factory=list)

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")


def item_entries(n_items: int, prefix: str = "load") -> list[dict]:
    """Item JSON for seeding: every 5th has a ``reviewed`` tag, every 7th is already in ``test``."""
    entries = []
    for i in range(n_items):
        tags: dict[str, Any] = {}
        if i % 5 == 0:
            tags["reviewed"] = True
        if i % 7 == 0:
            tags["test"] = True
        metadata: dict[str, Any] = {"user": {"index": i}}
        if tags:
            metadata["system"] = {"tags": tags}
        entries.append({"name": f"{prefix}-{i:06d}.jpg", "metadata": metadata})
    return entries


def seed(platform: LocalPlatform, dataset: Any, n_items: int, prefix: str = "load") -> list[str]:
    """Create the items server-side (no HTTP) and a prediction on every 10th; returns the ids."""
    ids = platform.add_items(dataset, item_entries(n_items, prefix))
    box = {"type": "box", "label": "cat", "coordinates": [{"x": 1, "y": 1, "z": 0}, {"x": 9, "y": 9, "z": 0}]}
    for item_id in ids[::10]:
        platform.store.create_annotations(item_id, [dict(box, metadata=PREDICTION)])
    return ids


def list_items(dataset: Any) -> list:
    """Every item entity of the dataset (one paged listing, 1,000 per page)."""
    return [item for page in dataset.items.list(filters=dl.Filters(page_size=1000)) for item in page]


def run_load(platform: LocalPlatform, project: Any, dataset: Any, items: list, workers: int) -> LoadResult:
    """Run one ``data_split`` execution per item on ``workers`` threads and check the outcome.

    Parameters
    ----------
    platform : LocalPlatform
    project, dataset : dl.Project, dl.Dataset
    items : list of dl.Item
        The items to route (entities as a pipeline would pass them).
    workers : int
        Concurrent executions.

    Returns
    -------
    LoadResult

    Example
    -------
    >>> result = run_load(platform, project, dataset, list_items(dataset), workers=8)  # doctest: +SKIP
    >>> result.problems
    []
    """
    config = SplitConfig.from_node_config(NODE_CONFIG)
    before = {i["id"]: (i["metadata"].get("system") or {}).get("tags") or {} for i in platform.items_json(dataset.id)}
    contexts = [
        platform.make_context(NODE_CONFIG, execution_id=f"exec-{item.id}", project=project, node_name="dataSplit")
        for item in items
    ]
    actions: dict[str, list[str]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    runner = main.ServiceRunner()

    def execute(index: int) -> None:
        item, context = items[index], contexts[index]
        progress = RecordingProgress()
        try:
            runner.data_split(item=item, progress=progress, context=context)
        except Exception as error:  # collected and reported: the run must not stop at the first one
            with lock:
                errors.append(f"{item.id}: {error!r}")
            return
        with lock:
            actions[item.id] = list(progress.actions)

    platform.reset_counts()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="execution") as pool:
        list(pool.map(execute, range(len(items))))
    seconds = time.perf_counter() - start
    counts = platform.request_counts
    result = LoadResult(items=len(items), workers=workers, seconds=seconds, requests=counts)

    problems = result.problems
    problems += [f"execution failed: {e}" for e in errors[:5]]
    failed = [r for r in platform.requests if r.status >= 400]
    if failed:
        problems.append(f"{len(failed)} requests failed, e.g. {failed[0]}")
    after = {i["id"]: i for i in platform.items_json(dataset.id)}
    needs_write = 0
    for item in items:
        old_tags = before[item.id]
        tags = (after[item.id]["metadata"].get("system") or {}).get("tags") or {}
        members = [name for name in config.subset_names if tags.get(name) is True]
        sticky = [name for name in config.subset_names if old_tags.get(name) is True]
        expected = sticky[0] if sticky else subset_for_item(item.id, config)
        needs_write += not sticky
        if members != [expected]:
            problems.append(f"item {item.id}: subset tags {members}, expected [{expected!r}]")
        if actions.get(item.id) != [expected]:
            problems.append(f"item {item.id}: progress actions {actions.get(item.id)}, expected [{expected!r}]")
        lost = {k: v for k, v in old_tags.items() if k not in config.subset_names and tags.get(k) != v}
        if lost:
            problems.append(f"item {item.id}: other tags lost {lost}")
        if after[item.id]["metadata"].get("user") != item.metadata.get("user"):
            problems.append(f"item {item.id}: user metadata changed")
    if counts[PATCH_ITEM] != needs_write:
        problems.append(f"{counts[PATCH_ITEM]} item updates for {needs_write} items that needed a tag")
    # first routing turns the reviewed pre-annotations into ground truth; items already in a subset
    # keep their (Evaluate) predictions (docs/nodes.md, Model Data Split)
    first_routed = {item.id for item in items if not any(before[item.id].get(n) is True for n in config.subset_names)}
    carriers = [
        a
        for a in platform.annotations_json(dataset.id)
        if "model" in (a["metadata"].get("user") or {}) and a["itemId"] in first_routed
    ]
    if carriers:
        problems.append(f"{len(carriers)} annotations of first-routed items still carry model metadata")
    del problems[20:]
    return result


def run_batch(platform: LocalPlatform, dataset: Any) -> tuple[float, list[str]]:
    """Edge: the whole dataset through :func:`nodes.data_split.split_dataset` (bulk updates);
    returns the seconds and the problems found (every item must end in exactly one subset)."""
    from nodes.data_split import split_dataset

    config = SplitConfig.from_node_config(NODE_CONFIG)
    start = time.perf_counter()
    split_dataset(dataset, config, show_progress=False)
    seconds = time.perf_counter() - start
    problems = []
    for item in platform.items_json(dataset.id):
        tags = (item["metadata"].get("system") or {}).get("tags") or {}
        members = [name for name in config.subset_names if tags.get(name) is True]
        if len(members) != 1:
            problems.append(f"batch item {item['id']}: subset tags {members}")
    return seconds, problems[:20]


def fresh_dataset(platform: LocalPlatform, name: str) -> tuple[Any, Any]:
    project = dl.projects.create(project_name=name)
    dataset = project.datasets.create(dataset_name="images", labels=make_labels(["cat", "dog"]))
    return project, dataset


def main_cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--reference-items", type=int, default=1_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("dtlpy").setLevel(logging.CRITICAL)
    logging.getLogger("nodes").setLevel(logging.WARNING)

    with LocalPlatform() as platform:
        project, dataset = fresh_dataset(platform, "load-reference")
        seed(platform, dataset, args.reference_items, prefix="ref")
        reference = run_load(platform, project, dataset, list_items(dataset), workers=1)

        project, dataset = fresh_dataset(platform, "load")
        seed(platform, dataset, args.items)
        items = list_items(dataset)
        result = run_load(platform, project, dataset, items, workers=args.workers)

        _, batch_dataset = fresh_dataset(platform, "load-batch")
        seed(platform, batch_dataset, args.items, prefix="batch")
        batch_seconds, batch_problems = run_batch(platform, batch_dataset)

    per_item = {k: round(v / result.items, 2) for k, v in sorted(result.requests.items())}
    print(f"requests per item ({args.workers} workers): {per_item}")
    print(
        f"reference: 1 worker, {reference.items} items: {reference.seconds:.1f} s, "
        f"{reference.items_per_second:.0f} items/s"
    )
    print(
        f"load: {args.workers} workers, {result.items} items: {result.seconds:.1f} s, "
        f"{result.items_per_second:.0f} items/s"
    )
    print(
        f"throughput ratio ({args.workers} workers / 1 worker): {result.items_per_second / reference.items_per_second:.2f}x"
    )
    print(
        f"batch split (python main.py split), {args.items} items: {batch_seconds:.1f} s, "
        f"{args.items / batch_seconds:.0f} items/s ({args.items / batch_seconds / result.items_per_second:.0f}x "
        f"the {args.workers}-worker pipeline)"
    )
    problems = reference.problems + result.problems + batch_problems
    if problems:
        print("FAILED checks:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"checks: every item tagged exactly once, no lost update, no failed request ({result.items} items)")
    return 0


if __name__ == "__main__":
    sys.exit(main_cli())
