"""Speed and memory of nodes.metrics against pycocotools and faster-coco-eval, measured in one run.

10,000 items x 10 ground-truth boxes x ~11 predictions over 3 labels (Dataloop-like 24-hex item
ids, string labels). The same data is scored by ours (from pandas DataFrames: input conversion
counts), by pycocotools ``COCOeval`` (evaluate + accumulate only, ``areaRng`` "all", one
``maxDets`` large enough to keep every prediction: the fastest way to run it) and by
faster-coco-eval ``COCOeval_faster``. The per-label APs must agree (to 1e-9 with pycocotools);
the script prints one line per library and the speed ratios, and exits non-zero when a target
is missed:

- one IoU threshold: >= 15x faster than pycocotools and >= 5x faster than faster-coco-eval;
- the 10 COCO thresholds: >= 5x faster than pycocotools;
- peak memory of our evaluation (tracemalloc) < 1 GB.

Usage: ``.venv/bin/python benchmarks/bench_metrics.py [--items 10000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import pathlib
import resource
import sys
import time
import tracemalloc

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from nodes import metrics  # noqa: E402

LABELS = ("cat", "dog", "bird")
COCO_THRESHOLDS = np.linspace(0.5, 0.95, 10)
TARGETS = {"pycocotools@0.5": 15.0, "faster-coco-eval@0.5": 5.0, "pycocotools@[.5:.95]": 5.0}
MEMORY_LIMIT_BYTES = 1 << 30


class Timer:
    """Wall-clock and CPU (process) seconds of a block. All three libraries run single-threaded
    here, so CPU time is the fair measure on a shared, loaded machine; wall time is printed too."""

    def __enter__(self) -> Timer:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def make_data(n_items: int, gt_per_item: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ground truth and predictions: jittered true boxes (some relabelled) plus random false ones."""
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
    # ~8.8 jittered copies of ground truth per item (10 % relabelled) + ~2.2 random boxes = ~11
    keep = rng.random(n_gt) < 0.88
    src = np.flatnonzero(keep)
    jitter = rng.normal(0, 0.08, (src.size, 4)) * np.c_[width[src], height[src], width[src], height[src]]
    p_left = left[src] + jitter[:, 0]
    p_top = top[src] + jitter[:, 1]
    p_right = np.maximum(left[src] + width[src] + jitter[:, 2], p_left)
    p_bottom = np.maximum(top[src] + height[src] + jitter[:, 3], p_top)
    p_label = np.where(rng.random(src.size) < 0.1, rng.integers(0, len(LABELS), src.size), gt_label[src])
    n_random = int(n_items * 2.2)
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


def run_pycocotools(gt_dict: dict, dt_dict: dict, thresholds: np.ndarray, max_dets: int) -> tuple[float, np.ndarray]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt, coco_dt = COCO(), COCO()
        coco_gt.dataset, coco_dt.dataset = gt_dict, dt_dict
        coco_gt.createIndex()
        coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        _set_params(evaluator, thresholds, max_dets)
        with Timer() as timer:
            evaluator.evaluate()
            evaluator.accumulate()
    return timer, _per_label_ap(evaluator.eval["precision"])


def run_faster_coco_eval(
    gt_dict: dict, dt_dict: dict, thresholds: np.ndarray, max_dets: int
) -> tuple[float, np.ndarray]:
    from faster_coco_eval import COCO, COCOeval_faster

    logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt, coco_dt = COCO(), COCO()
        coco_gt.dataset, coco_dt.dataset = gt_dict, dt_dict
        coco_gt.createIndex()
        coco_dt.createIndex()
        evaluator = COCOeval_faster(coco_gt, coco_dt, "bbox")
        _set_params(evaluator, thresholds, max_dets)
        with Timer() as timer:
            evaluator.evaluate()
            evaluator.accumulate()
    return timer, _per_label_ap(evaluator.eval["precision"])


def run_ours(gt: pd.DataFrame, pred: pd.DataFrame, thresholds, repeat: int) -> tuple[Timer, np.ndarray]:
    """Best of ``repeat`` runs from DataFrames to the per-label table; AP as (T, K)."""
    best = Timer()
    best.wall = best.cpu = float("inf")
    table = None
    for _ in range(repeat):
        with Timer() as timer:
            table = metrics.evaluate_detections(gt, pred, iou_threshold=thresholds).per_label
        best.wall, best.cpu = min(best.wall, timer.wall), min(best.cpu, timer.cpu)
    n_t = 1 if np.ndim(thresholds) == 0 else len(thresholds)
    return best, table["ap"].to_numpy().reshape(-1, n_t).T


def peak_memory_of_ours(gt: pd.DataFrame, pred: pd.DataFrame, thresholds) -> int:
    tracemalloc.start()
    metrics.evaluate_detections(gt, pred, iou_threshold=thresholds)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--gt-per-item", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5, help="runs of ours (best is kept)")
    args = parser.parse_args(argv)

    gt, pred = make_data(args.items, args.gt_per_item)
    max_dets = int(pred.groupby("item_id").size().max()) + 1
    print(
        f"data: {args.items} items, {len(gt)} ground-truth boxes, {len(pred)} predictions "
        f"({len(pred) / args.items:.1f}/item), {len(LABELS)} labels"
    )
    gt_dict, dt_dict = coco_datasets(gt, pred)

    failures = []
    times: dict[str, Timer] = {}

    def report(library: str, name: str, timer: Timer, ap: np.ndarray) -> None:
        times[f"{library}{name}"] = timer
        print(
            f"{library:16s} {name:10s} cpu {timer.cpu * 1000:9.1f} ms   wall {timer.wall * 1000:9.1f} ms   "
            f"mean AP {np.nanmean(ap):.6f}"
        )

    for name, thresholds in (("@0.5", 0.5), ("@[.5:.95]", COCO_THRESHOLDS)):
        ours, ours_ap = run_ours(gt, pred, thresholds, args.repeat)
        report("ours", name, ours, ours_ap)
        coco, coco_ap = run_pycocotools(gt_dict, dt_dict, np.atleast_1d(thresholds), max_dets)
        report("pycocotools", name, coco, coco_ap)
        diff = np.nanmax(np.abs(ours_ap - coco_ap))
        if not (np.array_equal(np.isnan(ours_ap), np.isnan(coco_ap)) and diff <= 1e-9):
            failures.append(f"AP differs from pycocotools {name} by {diff:.3g}")
        if name == "@0.5":
            fast, fast_ap = run_faster_coco_eval(gt_dict, dt_dict, np.atleast_1d(thresholds), max_dets)
            report("faster-coco-eval", name, fast, fast_ap)
            fast_diff = np.nanmax(np.abs(ours_ap - fast_ap))
            if fast_diff > 1e-6:
                failures.append(f"AP differs from faster-coco-eval by {fast_diff:.3g}")

    for reference, target in TARGETS.items():
        ours = times["ours" + reference[reference.index("@") :]]
        cpu_ratio = times[reference].cpu / ours.cpu
        wall_ratio = times[reference].wall / ours.wall
        verdict = "ok" if cpu_ratio >= target else "MISSED"
        print(
            f"ratio {reference:22s} {cpu_ratio:7.1f}x faster in CPU time, {wall_ratio:7.1f}x in wall time "
            f"(target >= {target:.0f}x) {verdict}"
        )
        if cpu_ratio < target:
            failures.append(f"{reference}: {cpu_ratio:.1f}x < {target:.0f}x")

    peak = peak_memory_of_ours(gt, pred, COCO_THRESHOLDS)
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        f"peak memory of ours (tracemalloc, 10 thresholds): {peak / 2**20:.1f} MiB "
        f"(limit {MEMORY_LIMIT_BYTES / 2**20:.0f} MiB); process max RSS incl. references {max_rss / 2**20:.0f} MiB"
    )
    if peak >= MEMORY_LIMIT_BYTES:
        failures.append(f"peak memory {peak / 2**20:.0f} MiB >= 1 GiB")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
