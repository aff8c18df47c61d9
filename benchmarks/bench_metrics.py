"""Speed and memory of nodes.metrics against pycocotools and faster-coco-eval, measured in one run.

Two data sets (Dataloop-like 24-hex item ids, string labels): *standard*, 10,000 items x 10
ground-truth boxes x ~11 predictions over 3 labels, and *crowded*, 10 items x 2,000 ground-truth
boxes x ~2,200 predictions of one label (every box of an image is a candidate of every other).
Ours runs from pandas DataFrames (input conversion counts); pycocotools ``COCOeval`` and
faster-coco-eval ``COCOeval_faster`` run evaluate + accumulate (areaRng "all", one ``maxDets``
keeping every prediction). Every implementation is timed the same way: best of ``--repeat`` runs,
interleaved (one run of each in turn), CPU and wall time. APs must agree (1e-9 with pycocotools);
ours' peak memory is measured by tracemalloc in a separate run. Exits non-zero when a target in
``TARGETS`` / ``MEMORY_LIMITS`` is missed. Usage:
``.venv/bin/python benchmarks/bench_metrics.py [--items 10000] [--repeat 5] [--no-crowded]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import pathlib
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from nodes import metrics  # noqa: E402

LABELS = ("cat", "dog", "bird")
COCO_THRESHOLDS = np.linspace(0.5, 0.95, 10)
#: Least CPU-time ratio (reference / ours) per case, measured in the same run.
TARGETS = {
    ("standard@0.5", "pycocotools"): 30.0,
    ("standard@0.5", "faster-coco-eval"): 15.0,
    ("standard@[.5:.95]", "pycocotools"): 15.0,
    ("crowded@0.5", "pycocotools"): 1.0,
}
#: Most tracemalloc peak of ours per case.
MEMORY_LIMITS = {"standard@[.5:.95]": 256 * 2**20, "crowded@0.5": 512 * 2**20}
IMPLEMENTATIONS = ("ours", "pycocotools", "faster-coco-eval")


class Timer:
    """Wall-clock and CPU (process) seconds of a block. All three libraries run single-threaded
    here, so CPU time is the fair measure on a shared, loaded machine; wall time is printed too."""

    def __enter__(self) -> Timer:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def make_data(
    n_items: int, gt_per_item: int, seed: int = 0, labels: tuple[str, ...] = LABELS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ground truth and predictions: jittered true boxes (some relabelled) plus random false ones
    (0.88 jittered copies and 0.22 random boxes per ground truth: ~1.1 predictions each)."""
    LABELS = labels  # noqa: N806 (the module default, or the crowded case's single label)
    rng = np.random.default_rng(seed)
    item_ids = np.array([f"{v:024x}" for v in rng.integers(0, 2**62, size=n_items)], dtype=object)
    n_gt = n_items * gt_per_item
    gt_item = np.repeat(np.arange(n_items), gt_per_item)
    left = rng.uniform(0, 900, n_gt).round(1)
    top = rng.uniform(0, 900, n_gt).round(1)
    width = rng.uniform(8, 100, n_gt).round(1)
    height = rng.uniform(8, 100, n_gt).round(1)
    gt_label = rng.integers(0, len(LABELS), n_gt)
    gt = pd.DataFrame(
        {
            "item_id": item_ids[gt_item],
            "label": np.asarray(LABELS, dtype=object)[gt_label],
            "left": left,
            "top": top,
            "right": left + width,
            "bottom": top + height,
        }
    )
    # 0.88 jittered copies of each ground truth (10 % relabelled) + 0.22 random boxes each
    keep = rng.random(n_gt) < 0.88
    src = np.flatnonzero(keep)
    jitter = rng.normal(0, 0.08, (src.size, 4)) * np.c_[width[src], height[src], width[src], height[src]]
    p_left = left[src] + jitter[:, 0]
    p_top = top[src] + jitter[:, 1]
    p_right = np.maximum(left[src] + width[src] + jitter[:, 2], p_left)
    p_bottom = np.maximum(top[src] + height[src] + jitter[:, 3], p_top)
    p_label = np.where(rng.random(src.size) < 0.1, rng.integers(0, len(LABELS), src.size), gt_label[src])
    n_random = int(n_items * gt_per_item * 0.22)
    r_item = rng.integers(0, n_items, n_random)
    r_left = rng.uniform(0, 900, n_random)
    r_top = rng.uniform(0, 900, n_random)
    pred = pd.DataFrame(
        {
            "item_id": item_ids[np.r_[gt_item[src], r_item]],
            "label": np.asarray(LABELS, dtype=object)[np.r_[p_label, rng.integers(0, len(LABELS), n_random)]],
            "left": np.r_[p_left, r_left],
            "top": np.r_[p_top, r_top],
            "right": np.r_[p_right, r_left + rng.uniform(8, 100, n_random)],
            "bottom": np.r_[p_bottom, r_top + rng.uniform(8, 100, n_random)],
            "confidence": np.r_[rng.uniform(0.3, 1.0, src.size), rng.uniform(0.0, 0.7, n_random)].round(3),
        }
    )
    pred = pred.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # items interleaved
    return gt, pred


def coco_datasets(gt: pd.DataFrame, pred: pd.DataFrame) -> tuple[dict, dict]:
    """COCO-format dicts: image ids follow the sorted item ids, category ids the sorted labels."""
    items = np.unique(np.r_[gt["item_id"].to_numpy(), pred["item_id"].to_numpy()])
    labels = sorted(set(gt["label"]) | set(pred["label"]))
    image_id = {item: i + 1 for i, item in enumerate(items)}
    category_id = {label: k + 1 for k, label in enumerate(labels)}
    images = [{"id": i, "width": 1000, "height": 1000} for i in image_id.values()]
    categories = [{"id": c, "name": label} for label, c in category_id.items()]

    def annotations(frame: pd.DataFrame, scored: bool) -> list:
        img = frame["item_id"].map(image_id).to_numpy()
        cat = frame["label"].map(category_id).to_numpy()
        x, y = frame["left"].to_numpy(), frame["top"].to_numpy()
        w, h = frame["right"].to_numpy() - x, frame["bottom"].to_numpy() - y
        score = frame["confidence"].to_numpy() if scored else None
        out = []
        for n in range(len(frame)):
            ann = {
                "id": n + 1,
                "image_id": int(img[n]),
                "category_id": int(cat[n]),
                "bbox": [float(x[n]), float(y[n]), float(w[n]), float(h[n])],
                "area": float(w[n] * h[n]),
                "iscrowd": 0,
            }
            if scored:
                ann["score"] = float(score[n])
            out.append(ann)
        return out

    base = {"images": images, "categories": categories}
    return {**base, "annotations": annotations(gt, False)}, {**base, "annotations": annotations(pred, True)}


def _set_params(evaluator, thresholds: np.ndarray, max_dets: int) -> None:
    evaluator.params.iouThrs = np.asarray(thresholds, dtype=float)
    evaluator.params.areaRng = [[0, 1e10]]
    evaluator.params.areaRngLbl = ["all"]
    evaluator.params.maxDets = [max_dets]


def _per_label_ap(precision: np.ndarray) -> np.ndarray:
    """(T, K) AP from a T x R x K x A x M precision array (NaN where COCO gives -1)."""
    p = precision[:, :, :, 0, -1]
    return np.where((p == -1).all(axis=1), np.nan, p.mean(axis=1))


def coco_runner(library: str, gt_dict: dict, dt_dict: dict, thresholds: np.ndarray, max_dets: int):
    """(setup, run, ap): setup builds a fresh evaluator (untimed), run evaluates + accumulates it."""
    if library == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Evaluator
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Evaluator

        logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt, coco_dt = COCO(), COCO()
        coco_gt.dataset, coco_dt.dataset = gt_dict, dt_dict
        coco_gt.createIndex()
        coco_dt.createIndex()

    def setup():
        evaluator = Evaluator(coco_gt, coco_dt, "bbox")
        _set_params(evaluator, np.atleast_1d(thresholds), max_dets)
        return evaluator

    def run(evaluator) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator.evaluate()
            evaluator.accumulate()

    return setup, run, lambda evaluator: _per_label_ap(evaluator.eval["precision"])


def ours_runner(gt: pd.DataFrame, pred: pd.DataFrame, thresholds):
    """(setup, run, ap) for ours: run scores the DataFrames and returns the result."""
    n_t = 1 if np.ndim(thresholds) == 0 else len(thresholds)

    def run(_state):
        return metrics.evaluate_detections(gt, pred, iou_threshold=thresholds)

    return lambda: None, run, lambda result: result.per_label["ap"].to_numpy().reshape(-1, n_t).T


def time_interleaved(runners: dict[str, tuple[Callable, Callable, Callable]], repeat: int) -> dict:
    """Best CPU and wall time of each runner over ``repeat`` rounds; each round runs every runner
    once, in an order rotated from round to round. Returns {name: (Timer with the bests, AP)}."""
    best: dict[str, Timer] = {}
    aps: dict[str, np.ndarray] = {}
    names = list(runners)
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            setup, run, ap = runners[name]
            state = setup()
            with Timer() as timer:
                out = run(state)
            result = out if out is not None else state
            if name not in best:
                best[name] = timer
                aps[name] = ap(result)
            best[name].cpu = min(best[name].cpu, timer.cpu)
            best[name].wall = min(best[name].wall, timer.wall)
    return {name: (best[name], aps[name]) for name in names}


def peak_memory_of_ours(gt: pd.DataFrame, pred: pd.DataFrame, thresholds) -> int:
    tracemalloc.start()
    metrics.evaluate_detections(gt, pred, iou_threshold=thresholds)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def blas_kernel() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = [
            f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info() if i["user_api"] == "blas"
        ]
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        info = []
    core = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return f"BLAS {', '.join(info) or 'unknown'} (OPENBLAS_CORETYPE {core}; only mask IoU uses BLAS)"


def run_case(case: str, gt: pd.DataFrame, pred: pd.DataFrame, thresholds, repeat: int, failures: list) -> dict:
    """Time every implementation on one case, check the APs agree, print and return the timers."""
    gt_dict, dt_dict = coco_datasets(gt, pred)
    max_dets = int(pred.groupby("item_id").size().max()) + 1
    runners = {"ours": ours_runner(gt, pred, thresholds)}
    for library in IMPLEMENTATIONS[1:]:
        runners[library] = coco_runner(library, gt_dict, dt_dict, thresholds, max_dets)
    results = time_interleaved(runners, repeat)
    ours_ap = results["ours"][1]
    for name, (timer, ap) in results.items():
        print(
            f"{case:18s} {name:16s} cpu {timer.cpu * 1000:9.1f} ms   wall {timer.wall * 1000:9.1f} ms   "
            f"mean AP {np.nanmean(ap):.6f}"
        )
        if name == "ours":
            continue
        diff = np.nanmax(np.abs(ours_ap - ap))
        tolerance = 1e-9 if name == "pycocotools" else 1e-6
        if not (np.array_equal(np.isnan(ours_ap), np.isnan(ap)) and diff <= tolerance):
            failures.append(f"{case}: AP differs from {name} by {diff:.3g}")
    return {name: timer for name, (timer, _) in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--gt-per-item", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs of each implementation (best kept)")
    parser.add_argument("--no-crowded", action="store_true", help="skip the crowded case")
    args = parser.parse_args(argv)
    print(blas_kernel())

    gt, pred = make_data(args.items, args.gt_per_item)
    print(
        f"standard: {args.items} items, {len(gt)} ground-truth boxes, {len(pred)} predictions "
        f"({len(pred) / args.items:.1f}/item), {len(LABELS)} labels"
    )
    cases = [("standard@0.5", gt, pred, 0.5), ("standard@[.5:.95]", gt, pred, COCO_THRESHOLDS)]
    if not args.no_crowded:
        crowded_gt, crowded_pred = make_data(10, 2000, seed=1, labels=("person",))
        print(
            f"crowded: 10 items, {len(crowded_gt)} ground-truth boxes, {len(crowded_pred)} predictions, 1 label "
            f"({len(crowded_gt) // 10 * (len(crowded_pred) // 10):,} candidate pairs per item)"
        )
        cases.append(("crowded@0.5", crowded_gt, crowded_pred, 0.5))

    failures: list[str] = []
    times = {}
    data = {}
    for case, case_gt, case_pred, thresholds in cases:
        times[case] = run_case(case, case_gt, case_pred, thresholds, args.repeat, failures)
        data[case] = (case_gt, case_pred, thresholds)

    for (case, reference), target in TARGETS.items():
        if case not in times:
            continue
        ours, ref = times[case]["ours"], times[case][reference]
        cpu_ratio, wall_ratio = ref.cpu / ours.cpu, ref.wall / ours.wall
        verdict = "ok" if cpu_ratio >= target else "MISSED"
        print(
            f"ratio {case:18s} vs {reference:16s} {cpu_ratio:7.1f}x faster in CPU time, {wall_ratio:7.1f}x in "
            f"wall time (target >= {target:g}x) {verdict}"
        )
        if cpu_ratio < target:
            failures.append(f"{case} vs {reference}: {cpu_ratio:.1f}x < {target:g}x")
    for case, times_of_case in times.items():
        ours = times_of_case["ours"]
        others = ", ".join(
            f"{times_of_case[name].cpu / ours.cpu:.1f}x {name}" for name in IMPLEMENTATIONS[1:] if name in times_of_case
        )
        print(f"ratios {case:18s} (CPU): {others}")

    for case, limit in MEMORY_LIMITS.items():
        if case not in data:
            continue
        case_gt, case_pred, thresholds = data[case]
        peak = peak_memory_of_ours(case_gt, case_pred, thresholds)
        stats = metrics.match_detections(case_gt, case_pred, thresholds).stats
        print(
            f"peak memory of ours {case:18s} {peak / 2**20:7.1f} MiB (tracemalloc; limit {limit / 2**20:.0f} MiB); "
            f"{stats.candidate_pairs:,} candidate pairs in {stats.blocks} block(s) of <= {stats.max_block_pairs:,}"
        )
        if peak > limit:
            failures.append(f"{case}: peak memory {peak / 2**20:.0f} MiB > {limit / 2**20:.0f} MiB")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
