"""Compare Models on LocalPlatform at scale: requests, listing time and compute time, with
references measured in the same run.

Seeds N test items (default 5,000) server-side, each with 10 ground-truth boxes over 3 labels
and, for each of 2 models, 11 predictions (one per ground-truth box, hitting it with the
model's quality -- 0.6 and 0.8 -- plus one low-confidence false positive), written straight
into the emulator's store (setup is not measured). Then, with the real
dtlpy client:

- ``floor``     the read floor: paging once through the same annotations as raw JSON
                (``nodes.common.paging.json_pages``, same filter, nothing converted) -- what any
                comparison must pay;
- ``node``      ``main.ServiceRunner().compare_models`` end to end (default config), with the
                request count; its phases (timed by wrapping the module's functions): test-item
                listing, annotation listing (+ record conversion), compute (DataFrames +
                evaluation of both models);
- ``bootstrap`` the paired bootstrap (1,000 resamples, ``confidence`` 0.95) on the listed data;
- ``entities``  the previous listing (dtlpy's ``annotations.list``: a ``dl.Annotation`` built per
                document, then its record), timed on the first ``--old-pages`` pages of the same
                filter and extrapolated to all listed annotations;
- ``per-item``  the reference a naive node would use: one ``item.annotations.list()`` per test
                item, timed on a sample of items and extrapolated to N.

Prints requests (and the bound ``annotations/1000 + items/1000 + 3``), the times and the ratios
node-listing/floor, entities/node-listing and per-item/node-listing; exits non-zero when the request bound is broken.

Usage: ``.venv/bin/python benchmarks/bench_compare.py [--items 5000] [--sample 50] [--old-pages 10]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import dtlpy as dl  # noqa: E402

import emulator  # noqa: E402
import main  # noqa: E402
from emulator import LocalPlatform, RecordingProgress  # noqa: E402
from nodes.common.paging import json_pages  # noqa: E402
from nodes.compare_models import CompareConfig  # noqa: E402
from nodes.compare_models import node as compare_node  # noqa: E402
from nodes.compare_models import records as compare_records  # noqa: E402

LABELS = ("cat", "dog", "bird")


def _box(label: str, left: float, top: float, width: float, height: float, model=None, confidence=None) -> dict:
    annotation = {
        "type": "box",
        "label": label,
        "coordinates": [{"x": left, "y": top, "z": 0}, {"x": left + width, "y": top + height, "z": 0}],
        "metadata": {},
    }
    if model is not None:
        annotation["metadata"] = {
            "user": {"model": {"model_id": model.id, "name": model.name, "confidence": confidence}}
        }
    return annotation


def seed(platform: LocalPlatform, dataset: dl.Dataset, n_items: int, models, gt_per_item: int = 10) -> int:
    """Items tagged test, ground truth and predictions; returns the number of annotations."""
    rng = np.random.default_rng(0)
    item_ids = platform.add_items(
        dataset,
        [{"name": f"img-{i:06d}.jpg", "metadata": {"system": {"tags": {"test": True}}}} for i in range(n_items)],
    )
    total = 0
    for item_id in item_ids:
        boxes = np.c_[rng.uniform(0, 900, (gt_per_item, 2)), rng.uniform(10, 100, (gt_per_item, 2))]
        labels = [LABELS[k] for k in rng.integers(0, len(LABELS), gt_per_item)]
        annotations = [_box(label, *box) for label, box in zip(labels, boxes, strict=True)]
        for model, quality in models:
            hits = rng.uniform(size=gt_per_item) < quality
            for label, box, hit in zip(labels, boxes, hits, strict=True):
                shift = 1.0 if hit else box[2] * 0.6
                annotations.append(
                    _box(label, box[0] + shift, box[1], box[2], box[3], model, float(rng.uniform(0.05, 1)))
                )
            left, top = rng.uniform(0, 900, 2)  # one false positive per item: ~11 predictions
            annotations.append(_box(LABELS[0], left, top, 30, 30, model, float(rng.uniform(0.01, 0.5))))
        platform.store.create_annotations(item_id, annotations)
        total += len(annotations)
    return total


def main_(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--sample", type=int, default=50, help="items timed for the per-item reference")
    parser.add_argument(
        "--old-pages", type=int, default=10, help="pages of 1,000 timed for the entity-building reference"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for name in ("dtlpy", "emulator", "nodes"):
        logging.getLogger(name).setLevel(logging.WARNING)

    with LocalPlatform() as platform:
        project = dl.projects.create(project_name="bench-compare")
        dataset = project.datasets.create(dataset_name="images", labels=emulator.make_labels(list(LABELS)))
        previous = platform.create_model(project, "previous", dataset=dataset)
        new = platform.create_model(project, "new", dataset=dataset)
        start = time.perf_counter()
        n_annotations = seed(platform, dataset, args.items, [(previous, 0.6), (new, 0.8)])
        print(f"seeded {args.items} test items, {n_annotations} annotations in {time.perf_counter() - start:.1f} s")

        config = CompareConfig.from_json(None)
        query = config.precision_recall.test_subset_query()

        # floor: one paged pass over the same annotations as raw JSON, nothing converted
        platform.reset_counts()
        start = time.perf_counter()
        filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION, page_size=1000)
        filters.add(
            field="metadata.user.model.model_id",
            values=[previous.id, new.id],
            operator=dl.FiltersOperations.IN,
            method=dl.FiltersMethod.OR,
        )
        filters.add(
            field="metadata.user.model", values=False, operator=dl.FiltersOperations.EXISTS, method=dl.FiltersMethod.OR
        )
        floor_count = sum(len(page) for page in json_pages(dataset.annotations, filters))
        floor_s = time.perf_counter() - start
        floor_requests = sum(platform.request_counts.values())

        # the previous listing: dtlpy entities, then records, on the first --old-pages pages
        start = time.perf_counter()
        old_count = 0
        paged = dataset.annotations.list(filters=filters)
        for number in range(args.old_pages):  # dtlpy's PagedEntities, page by page
            if number and not paged.has_next_page:
                break
            if number:
                paged.next_page()
            old_count += len([compare_records._annotation_record(annotation) for annotation in paged.items])
        old_per_annotation_s = (time.perf_counter() - start) / max(1, old_count)

        # end to end through the service runner, its phases timed by wrapping the module's functions
        phases: dict[str, float] = {}
        captured: dict = {}

        def timed(name, function):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                result = function(*args, **kwargs)
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - start
                if name == "compute (tables)":
                    captured["tables"] = result
                return result

            return wrapper

        originals = {}
        for attribute, name in (
            ("list_test_item_ids", "items listing"),
            ("list_test_annotations", "annotations listing"),
            ("annotation_tables", "compute (tables)"),
            ("evaluation_votes", "compute (evaluations)"),
        ):
            originals[attribute] = getattr(compare_node, attribute)
            setattr(compare_node, attribute, timed(name, originals[attribute]))
        platform.reset_counts()
        progress = RecordingProgress()
        start = time.perf_counter()
        try:
            main.ServiceRunner().compare_models(
                previous_model=previous, new_model=new, compare_config=None, dataset=dataset, progress=progress
            )
        finally:
            for attribute, function in originals.items():
                setattr(compare_node, attribute, function)
        node_s = time.perf_counter() - start
        counts = platform.request_counts
        node_requests = sum(counts.values())
        node_writes = platform.write_count()
        listing_requests = counts["POST /datasets/{id}/query"]
        report = platform.get_json("models", new.id)["metadata"]["user"]["activeLearning"]["comparison"]
        vote = report["votes"][0]
        items_s, annotations_s = phases["items listing"], phases["annotations listing"]
        compute_s = phases["compute (tables)"] + phases["compute (evaluations)"]

        significance = CompareConfig.from_json({"precision_recall": {"confidence": 0.95}}).precision_recall
        start = time.perf_counter()
        boot = compare_node.evaluation_votes(captured["tables"], significance)
        bootstrap_s = time.perf_counter() - start
        n_listed = report["details"]["annotations"]
        item_ids = compare_node.list_test_item_ids(dataset, query)

        # per-item reference, on a sample
        sample = item_ids[: args.sample]
        start = time.perf_counter()
        for item_id in sample:
            dataset.items.get(item_id=item_id).annotations.list()
        per_item_s = (time.perf_counter() - start) / max(1, len(sample)) * len(item_ids)

    bound = math.ceil(n_annotations / 1000) + math.ceil(args.items / 1000) + 3
    listing_s = items_s + annotations_s
    print(f"annotations listed       {n_listed} (floor pass: {floor_count})")
    print(f"requests (node)          {node_requests} total, {node_writes} write; listing {listing_requests}; "
          f"bound {bound}; floor {floor_requests}; per-item reference {2 * len(item_ids) + 1}")  # fmt: skip
    print(f"listing time             {listing_s:.2f} s (items {items_s:.2f} s + annotations {annotations_s:.2f} s)")
    print(f"floor listing time       {floor_s:.2f} s   ratio listing/floor {listing_s / floor_s:.2f}")
    old_s = old_per_annotation_s * n_listed
    print(f"entity listing (old)     {old_s:.1f} s (extrapolated from {old_count} annotations, "
          f"{old_per_annotation_s * 1e3:.3f} ms each)   ratio old/new annotations listing {old_s / annotations_s:.1f}")  # fmt: skip
    print(f"compute time             {compute_s:.2f} s (frames + both evaluations + decision)")
    print(f"bootstrap 1,000 resamples {bootstrap_s:.2f} s   interval {boot.votes[0].interval}")
    print(f"node end to end          {node_s:.2f} s -> {progress.actions}  ({vote['name']}: "
          f"{vote['previous']:.4f} -> {vote['new']:.4f})")  # fmt: skip
    print(f"per-item reference       {per_item_s:.1f} s (extrapolated from {len(sample)} items)   "
          f"ratio per-item/listing {per_item_s / listing_s:.1f}")  # fmt: skip
    if node_requests - node_writes > bound:
        print(f"FAIL: {node_requests - node_writes} read requests > bound {bound}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main_())
