"""Batch Model Data Split of a large dataset on LocalPlatform, with references measured in one run.

Seeds N items (default 100,000) server-side with ``LocalPlatform.add_items`` (the emulator's
documented seeding helper: no HTTP, not counted), then measures with the real dtlpy client:

- ``listing``  the read floor: listing every item page by page (what any split must pay);
- ``dry-run``  listing + the pure decisions, nothing written;
- ``split``    ``split_dataset`` at 80/10/10: listing + exact assignment + bulk tag updates;
- ``rerun``    the same split again: everything is sticky, nothing is written;
- ``per-item`` the reference a naive script would use: one ``item.update`` PATCH per item, timed
  on a sample of items and extrapolated to N.

It prints items/s, requests and write requests per 1,000 items, and the ratios split/listing and
per-item/split; it exits non-zero when the split needs more than 5 write requests per 1,000 items
or rerun writes anything.

Usage: ``.venv/bin/python benchmarks/bench_split.py [--items 100000] [--sample 300] [--group-by FIELD]``.

Measured 2026-11-25 at 100,000 items on the shared 2-core machine (noisy; compare ratios)::

    listing   100000 items  7.04 s  14203 items/s  1.00 req/1k  0.00 writes/1k
    dry-run   100000 items 11.00 s   9094 items/s  1.00 req/1k  0.00 writes/1k
    split     100000 items 12.67 s   7893 items/s  2.00 req/1k  1.00 writes/1k  (bulk writes took 1.67 s)
    rerun     100000 items 19.29 s   5184 items/s  1.00 req/1k  0.00 writes/1k
    per-item     300 items  2.77 s    108 items/s  -> 924.6 s for 100000 items
    ratios: split/listing 1.80x time; per-item/split 73.0x faster; 1.00 write requests per 1,000 items

The 100 bulk writes (1,000 ids each) take ~1.7 s since the emulator looks ``id $in`` filters up
by id and matches ``$in`` with sets; before, each bulk write scanned the dataset testing 1,000
candidates per item (~270 s per write at 100,000 items, i.e. hours for the whole split).
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import dtlpy as dl  # noqa: E402

import emulator  # noqa: E402,F401  (sets DATALOOP_PATH before dtlpy is imported)
from emulator import LocalPlatform  # noqa: E402
from nodes import data_split  # noqa: E402

WRITE_TARGET_PER_1000 = 5.0
LABELS = ("cat", "dog", "bird")


def seed_items(platform: LocalPlatform, dataset: dl.Dataset, n: int, chunk: int = 10_000) -> None:
    for start in range(0, n, chunk):
        platform.add_items(
            dataset,
            [
                {"name": f"img{k:07d}.jpg", "dir": "/bench", "metadata": {"user": {"patient": f"p{k % 997}"}}}
                for k in range(start, min(n, start + chunk))
            ],
        )


def timed(platform: LocalPlatform, fn):
    platform.reset_counts()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return result, seconds, sum(platform.request_counts.values()), platform.write_count()


def line(name: str, n: int, seconds: float, requests: int, writes: int) -> str:
    return (
        f"{name:<9} {n:>8} items {seconds:8.2f} s {n / seconds:10.0f} items/s "
        f"{1000 * requests / n:7.2f} req/1k {1000 * writes / n:7.2f} writes/1k"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=300, help="items tagged one by one for the per-item reference")
    parser.add_argument("--group-by", default=None, help="also split with group_by (e.g. metadata.user.patient)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("dtlpy").setLevel(logging.ERROR)
    dl.verbose.disable_progress_bar = True

    with LocalPlatform() as platform:
        project = dl.projects.create(project_name="bench-split")
        dataset = project.datasets.create(dataset_name="bench")
        seed_items(platform, dataset, args.items)
        n = args.items
        print(f"seeded {n} items; emulator at {platform.url}")

        def listing():
            return sum(len(page) for page in data_split.batch._item_pages(dataset, None))

        count, t_list, r_list, w_list = timed(platform, listing)
        assert count == n, count
        print(line("listing", n, t_list, r_list, w_list))

        _, t_dry, r_dry, w_dry = timed(
            platform,
            lambda: data_split.split_dataset(dataset, None, show_progress=False, group_by=args.group_by, dry_run=True),
        )
        print(line("dry-run", n, t_dry, r_dry, w_dry) + "  (listing + decisions, no writes)")

        summary, t_split, r_split, w_split = timed(
            platform, lambda: data_split.split_dataset(dataset, None, show_progress=False, group_by=args.group_by)
        )
        print(line("split", n, t_split, r_split, w_split) + f"  (bulk writes took {t_split - t_dry:.2f} s)")
        print(f"          subsets {summary.per_subset} (targets {summary.targets})")

        again, t_rerun, r_rerun, w_rerun = timed(
            platform, lambda: data_split.split_dataset(dataset, None, show_progress=False, group_by=args.group_by)
        )
        print(line("rerun", n, t_rerun, r_rerun, w_rerun))

        sample_ids = [i["id"] for i in platform.items_json(dataset.id)[: args.sample]]
        sample = [dataset.items.get(item_id=i) for i in sample_ids]

        def per_item():
            for item in sample:
                item.metadata.setdefault("system", {}).setdefault("tags", {})["reviewed"] = True
                item.update(system_metadata=True)

        _, t_item, r_item, w_item = timed(platform, per_item)
        k = len(sample)
        print(line("per-item", k, t_item, r_item, w_item) + f"  -> {t_item / k * n:.1f} s for {n} items")

        writes_per_1000 = 1000 * w_split / n
        print(
            f"ratios: split/listing {t_split / t_list:.2f}x time; per-item/split {t_item / k * n / t_split:.1f}x "
            f"faster; write requests per 1,000 items {writes_per_1000:.2f} (target <= {WRITE_TARGET_PER_1000})"
        )
        ok = writes_per_1000 <= WRITE_TARGET_PER_1000 and w_rerun == 0 and again.assignments == summary.assignments
        print("OK" if ok else "TARGET MISSED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
