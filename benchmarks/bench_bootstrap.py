"""The paired bootstrap of Compare Models at its ``resamples`` bound: peak memory and time.

Builds (in memory, no platform) a test subset of N items (default 1,000) with 6 ground-truth boxes
over 3 labels each and, for each of 2 models, 6 predictions whose confidences are rounded to 0.1
(so one item often holds tied true and false positives), then runs
``nodes.compare_models.evaluation.evaluation_votes`` with ``confidence`` 0.95 and ``resamples`` =
100,000 (``MAX_RESAMPLES``) and ``per_label`` on, measuring the peak of traced memory
(``tracemalloc``; numpy reports its buffers to it) over the whole call (both evaluations and the
bootstrap).

References measured in the same run:

- ``one block``  the memory the previous implementation needed: the whole (resamples x items)
                 weight matrix at once (computed, not allocated: 8 bytes x resamples x items);
- ``1,000``      the same bootstrap at the default 1,000 resamples (time ratio, memory ratio);
- ``no bootstrap`` the same call without ``confidence`` (what the evaluations alone take).

Exits non-zero when the peak at the bound exceeds 256 MiB, or when the bootstrap interval differs
between two block sizes (the result must not depend on it).

Usage: ``.venv/bin/python benchmarks/bench_bootstrap.py [--items 1000] [--resamples 100000]``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from nodes.compare_models.config import MAX_RESAMPLES, PrecisionRecallConfig  # noqa: E402
from nodes.compare_models.evaluation import bootstrap_block_size, evaluation_votes  # noqa: E402
from nodes.compare_models.records import annotation_tables  # noqa: E402

LABELS = ("cat", "dog", "bird")
LIMIT_BYTES = 256 * 2**20


def build_records(n_items: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_items):
        item = f"item-{i:06d}"
        for k in range(6):
            left, top = (float(v) for v in rng.uniform(0, 600, 2))
            gt = {"item_id": item, "type": "box", "label": LABELS[k % 3], "left": left, "top": top,
                  "right": left + 40, "bottom": top + 40, "model_id": None, "confidence": None}  # fmt: skip
            records.append(gt)
            for owner, quality in (("prev", 0.6), ("new", 0.75)):
                shift = 1.0 if rng.uniform() < quality else 25.0
                records.append(dict(gt, model_id=owner, confidence=round(float(rng.uniform()), 1),
                                    left=left + shift, right=left + 40 + shift))  # fmt: skip
    return records


def measure(tables: dict, config: PrecisionRecallConfig, items: list, block: int | None = None):
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    outcome = evaluation_votes(tables, config, item_ids=items, bootstrap_block=block)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return outcome, seconds, peak


def main_(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=MAX_RESAMPLES)
    args = parser.parse_args(argv)
    items = [f"item-{i:06d}" for i in range(args.items)]
    tables = annotation_tables(build_records(args.items), "prev", "new")
    base = {"confidence": 0.95, "per_label": True, "seed": 7}

    _, plain_s, plain_peak = measure(tables, PrecisionRecallConfig(per_label=True), items)
    small, small_s, small_peak = measure(tables, PrecisionRecallConfig(**base, resamples=1000), items)
    big, big_s, big_peak = measure(tables, PrecisionRecallConfig(**base, resamples=args.resamples), items)
    whole_matrix = 8 * args.resamples * args.items
    block = bootstrap_block_size(args.items, args.resamples)
    other, _, _ = measure(tables, PrecisionRecallConfig(**base, resamples=1000), items, block=97)

    print(f"test items               {args.items}; votes {len(big.votes)} (per label); block {block} resamples")
    print(f"no bootstrap             {plain_s:.1f} s   peak {plain_peak / 2**20:.1f} MiB")
    print(f"1,000 resamples          {small_s:.1f} s   peak {small_peak / 2**20:.1f} MiB")
    print(f"{args.resamples:,} resamples  {big_s:.1f} s   peak {big_peak / 2**20:.1f} MiB "
          f"(limit {LIMIT_BYTES / 2**20:.0f} MiB)")  # fmt: skip
    print(f"one-block reference      {whole_matrix / 2**20:.1f} MiB for the weight matrix alone   "
          f"ratio reference/peak {whole_matrix / big_peak:.1f}")  # fmt: skip
    print(f"time ratio               {big_s / small_s:.1f} for {args.resamples / 1000:.0f}x the resamples")
    for vote in big.votes:
        print(f"  {vote.name:28s} delta {vote.delta:+.4f}  interval [{vote.interval[0]:+.4f}, {vote.interval[1]:+.4f}]")
    status = 0
    if big_peak > LIMIT_BYTES:
        print(f"FAIL: peak {big_peak / 2**20:.1f} MiB > {LIMIT_BYTES / 2**20:.0f} MiB")
        status = 1
    if [v.interval for v in other.votes] != [v.interval for v in small.votes]:
        print("FAIL: the interval depends on the block size")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main_())
