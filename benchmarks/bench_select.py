"""Select for Labeling at scale: CPU time, peak memory and requests against the bound.

Two parts, both printing figures (no timed assertions; exit 1 only when a bound is broken):

- ``pure``: the node's own work on a 100,000-item pool (``--items``) whose annotations arrive
  as synthetic raw-JSON pages of 1,000, exactly as the platform answers the pool's annotation
  query: classification (10 class predictions per item, 1M annotations) and detection (5 boxes
  per item, 500k annotations). Each page is reduced as it arrives
  (``node.read_annotation_page``), then ``select.select_pool`` scores and chooses ``--budget``
  items with ``diversity: cluster``. The JSON is generated lazily and its generation is not
  timed. CPU time is ``time.process_time`` (all threads), peak memory is ``tracemalloc``'s
  peak over the run (numpy reports its buffers to it; it includes the one synthetic page held
  at a time, about 1.5 MiB). The requests the node would
  make for this pool are counted from the pages: ``ceil(annotations / 1000)`` +
  ``ceil(items / 1000)`` + ``1 + ceil(budget / 1000)`` writes (the ranking item's upload + the
  bulk updates), against the bound ``ceil(annotations / 1000) + ceil(items / 1000) + bulk writes
  + 1``.
- ``platform``: ``main.ServiceRunner().select_items`` end to end on LocalPlatform with the real
  dtlpy client on a reduced pool (``--platform-items``, default 3,000 items × 10 class
  predictions, seeded straight into the emulator's store), with the request count against
  ``ceil(annotations / 1000) + ceil(items / 1000) + bulk writes + 1`` (the 1: the upload of the
  hidden ranking item ``/.activelearning/selections/<executionId>.json``; the model is not
  written). Uploading 1M annotations to the
  local platform through HTTP is not what is measured here (and takes far longer than the
  node), so the end-to-end run is reduced; requests do not depend on the pool's scale beyond
  the page counts.

Usage: ``.venv/bin/python benchmarks/bench_select.py [--items 100000] [--budget 1000]
[--platform-items 3000] [--skip-platform]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import pathlib
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# dtlpy reads DATALOOP_PATH (cookie, log files) once, at import: a temporary folder, not ~/.dataloop.
os.environ.setdefault("DATALOOP_PATH", tempfile.mkdtemp(prefix="dtlpy-home-"))

import dtlpy as dl  # noqa: E402  (before logging is configured: importing dtlpy sets its own log levels)

import main as service  # noqa: E402
from emulator import LocalPlatform, RecordingProgress, make_labels  # noqa: E402
from nodes.select_for_labeling.config import SelectionConfig  # noqa: E402
from nodes.select_for_labeling.pool import read_annotation_page  # noqa: E402
from nodes.select_for_labeling.select import select_pool  # noqa: E402

PAGE = 1000
MODEL_ID = "65f0c2aa11bb22cc33dd44ee"
LABELS = [f"class_{k}" for k in range(10)]
CPU_LIMIT_S = 30.0


def item_id(n: int) -> str:
    return f"{n:024x}"


def annotation_pages(n_items: int, per_item: int, kind: str, seed: int) -> Iterator[list[dict]]:
    """Raw annotation JSON as the platform pages it (1,000 a page, the fields the node reads + a few more)."""
    rng = np.random.default_rng(seed)
    page: list[dict] = []
    counter = 0
    for n in range(n_items):
        iid = item_id(n)
        if kind == "class":
            confidences = rng.dirichlet(np.full(per_item, 0.3))
            labels = LABELS
        else:
            confidences = rng.uniform(0.05, 1.0, per_item)
            labels = rng.choice(LABELS, per_item)
        for k in range(per_item):
            counter += 1
            doc = {
                "id": f"{counter:024x}",
                "itemId": iid,
                "datasetId": "d" * 24,
                "type": "class" if kind == "class" else "box",
                "label": str(labels[k]),
                "coordinates": [] if kind == "class" else [{"x": 1, "y": 2, "z": 0}, {"x": 30, "y": 40, "z": 0}],
                "metadata": {
                    "system": {"status": None, "attributes": {}},
                    "user": {"model": {"model_id": MODEL_ID, "name": "resnet", "confidence": float(confidences[k])}},
                },
            }
            page.append(doc)
            if len(page) == PAGE:
                yield page
                page = []
    if page:
        yield page


def run_pure(n_items: int, per_item: int, kind: str, budget: int) -> dict:
    pool_ids = [item_id(n) for n in range(n_items)]
    wanted = frozenset(pool_ids)
    config = SelectionConfig.from_json({"budget": budget, "strategy": "margin", "diversity": "cluster"})
    cpu = 0.0
    frames: list[pd.DataFrame] = []
    pages = 0
    annotations = 0
    tracemalloc.start()
    tracemalloc.reset_peak()
    generator = annotation_pages(n_items, per_item, kind, seed=1)
    while True:
        page = next(generator, None)  # generating the synthetic JSON is not timed
        if page is None:
            break
        pages += 1
        annotations += len(page)
        start = time.process_time()
        frame, _ = read_annotation_page(page, wanted, MODEL_ID)
        frames.append(frame)
        cpu += time.process_time() - start
        del page
    start = time.process_time()
    predictions = pd.concat(frames, ignore_index=True)
    del frames
    read_cpu = cpu
    selection, _ = select_pool(predictions, pool_ids, config)
    cpu += time.process_time() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    item_pages = math.ceil(n_items / PAGE)
    bulk_writes = math.ceil(len(selection.item_ids) / 1000)
    writes = 1 + bulk_writes  # the ranking item's upload + the bulk updates
    requests = pages + item_pages + writes
    bound = math.ceil(annotations / 1000) + math.ceil(n_items / 1000) + bulk_writes + 1
    return {
        "kind": kind,
        "items": n_items,
        "annotations": annotations,
        "chosen": len(selection.item_ids),
        "method": selection.method,
        "cpu_s": cpu,
        "read_cpu_s": read_cpu,
        "choose_cpu_s": cpu - read_cpu,
        "peak_mb": peak / 2**20,
        "requests": requests,
        "bound": bound,
    }


def run_platform(n_items: int, budget: int) -> dict:
    with LocalPlatform() as platform:
        project = dl.projects.create(project_name="bench-select")
        dataset = project.datasets.create(dataset_name="pool", labels=make_labels(LABELS))
        model = platform.create_model(project, "resnet", dataset=dataset)
        ids = platform.add_items(dataset, [{"name": f"img-{n:06d}.jpg"} for n in range(n_items)])
        rng = np.random.default_rng(2)
        for iid in ids:
            confidences = rng.dirichlet(np.full(len(LABELS), 0.3))
            platform.store.create_annotations(
                iid,
                [
                    {
                        "type": "class",
                        "label": label,
                        "coordinates": [],
                        "metadata": {
                            "user": {"model": {"model_id": model.id, "name": "resnet", "confidence": float(c)}}
                        },
                    }
                    for label, c in zip(LABELS, confidences, strict=True)
                ],
            )
        context = platform.make_context(execution_id="bench-exec", project=project)
        platform.reset_counts()
        start = time.perf_counter()
        items = service.ServiceRunner().select_items(
            model=model,
            dataset=dataset,
            selection_config={"budget": budget, "diversity": "cluster"},
            progress=RecordingProgress(),
            context=context,
        )
        wall = time.perf_counter() - start
        requests = list(platform.requests)
        writes = sum(1 for r in requests if r.wrote)
        bulk_writes = sum(1 for r in requests if r.wrote and r.route == "/datasets/{id}/query")
        model_writes = sum(1 for r in requests if r.wrote and r.route.startswith("/ml/models"))
        reads = len(requests) - writes
        n_annotations = n_items * len(LABELS)
        # + the ranking upload + the node config read (GET /pipelines/{id}) + the claim re-reads (per 1,000 chosen)
        bound = (
            math.ceil(n_annotations / 1000) + math.ceil(n_items / 1000) + bulk_writes + math.ceil(len(items) / 1000) + 2
        )
        platform.reset_counts()
        service.ServiceRunner().select_items(
            model=model, dataset=dataset, selection_config={"budget": budget, "diversity": "cluster"}, context=context
        )
        rerun_writes = platform.write_count()
        rerun_requests = len(platform.requests)
    return {
        "items": n_items,
        "annotations": n_annotations,
        "chosen": len(items),
        "wall_s": wall,
        "requests": len(requests),
        "reads": reads,
        "writes": writes,
        "bound": bound,
        "model_writes": model_writes,
        "rerun_requests": rerun_requests,
        "rerun_writes": rerun_writes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--platform-items", type=int, default=3000)
    parser.add_argument("--skip-platform", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for name in ("dtlpy", "emulator", "nodes"):
        logging.getLogger(name).setLevel(logging.WARNING)
    ok = True
    print(f"pure part: {args.items:,} pool items, budget {args.budget:,}, diversity cluster, strategy margin")
    for kind, per_item in (("class", 10), ("box", 5)):
        r = run_pure(args.items, per_item, kind, args.budget)
        within = r["cpu_s"] <= CPU_LIMIT_S and r["requests"] <= r["bound"]
        ok &= within
        print(
            f"  {kind:5s} {r['annotations']:>9,} annotations: chose {r['chosen']:,} ({r['method']}) in "
            f"{r['cpu_s']:.1f} s CPU (pages {r['read_cpu_s']:.1f} s + score/choose {r['choose_cpu_s']:.1f} s; "
            f"limit {CPU_LIMIT_S:.0f} s), peak {r['peak_mb']:.0f} MiB; requests {r['requests']:,} vs bound "
            f"{r['bound']:,} {'ok' if within else 'OVER'}"
        )
    if not args.skip_platform:
        r = run_platform(args.platform_items, min(args.budget, args.platform_items // 3))
        within = r["requests"] <= r["bound"] and r["rerun_writes"] == 0 and r["model_writes"] == 0
        ok &= within
        print(
            f"platform (reduced, end to end through dtlpy): {r['items']:,} items, {r['annotations']:,} annotations, "
            f"chose {r['chosen']:,} in {r['wall_s']:.1f} s wall; requests {r['requests']} ({r['reads']} reads + "
            f"{r['writes']} writes, {r['model_writes']} on the model) vs bound {r['bound']} "
            f"{'ok' if within else 'OVER'}; rerun: "
            f"{r['rerun_requests']} requests, {r['rerun_writes']} writes"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
