"""Does choosing by uncertainty beat random labelling for boxes? Digit scenes, measured in one run.

The setup of issue 21: the detection scenes of :mod:`demo.detection.data` (sklearn's digits pasted
on noisy 96 × 96 canvases, 10 % empty), the CPU detector of :mod:`demo.detection.detector`, a
fixed test set of ``--test`` scenes (digits from the held-out half), and per seed a pool of
``--pool`` scenes with ``--initial`` seeded random labelled scenes, then ``--rounds`` rounds of
``--budget`` scenes chosen by each strategy. Every choice goes through the node's own code, as
the pipeline does: the detector's boxes become box prediction records with their confidence and
top-3 class-score vector (what :class:`demo.detection.adapter.DetectorAdapter` uploads),
:func:`nodes.select_for_labeling.score_items` rolls them up per image (``aggregation``,
``emptyScore``) and :func:`nodes.select_for_labeling.choose_items` picks the batch. AP@0.5 is
``nodes.metrics.evaluate_detections`` (COCO interpolation), mean over the 10 digits.

Strategies: ``random``; least confidence / margin / entropy × aggregation max / mean / sum with
``emptyScore`` 1 (the node's current default: an image with no detection ranks first) and with
``emptyScore`` 0 (such images rank last). ``mean`` is the sum of the box uncertainties divided by
the number of boxes: the per-box, cost-normalised score of cost-sensitive active learning with
the number of boxes as the labelling-cost proxy (Settles, Craven & Friedland, 2008); ``sum`` is
the node's min(1, Σu); ``max`` the most uncertain box (Brust, Käding & Denzler, 2019, compare the
three roll-ups for detectors).

Printed: AP@0.5 mean ± std per round, and per strategy the seeds where its final AP beats random's
by more than ``--tie`` (win), is within it (tie) or below it (loss); same seed = same pool, same
initial labels, same test set. Window features are computed once per scene (they do not depend
on the model), so every fit and prediction reuses them.

Usage: ``.venv/bin/python benchmarks/bench_al_detection.py [--seeds 10] [--quick]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one BLAS thread per process: seeds run side by side instead

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from demo.detection.adapter import detection_records  # noqa: E402
from demo.detection.data import LABELS, DetectionScenes, make_scenes  # noqa: E402
from demo.detection.detector import (  # noqa: E402
    Detector,
    SceneWindows,
    class_probabilities,
    detections_from_probabilities,
    fit_detector,
    scene_windows,
)
from nodes.metrics import evaluate_detections  # noqa: E402
from nodes.select_for_labeling import choose_items, score_items  # noqa: E402

SCORES = ("least_confidence", "margin", "entropy")
AGGREGATIONS = ("max", "mean", "sum")
EMPTY_SCORES = (1.0, 0.0)
TEST_SEED = 20_21


@dataclass(frozen=True)
class Strategy:
    """One arm: the node's ``strategy``, ``aggregation`` and ``emptyScore``."""

    score: str
    aggregation: str = "max"
    empty_score: float = 1.0

    @property
    def name(self) -> str:
        if self.score == "random":
            return "random"
        return f"{self.score}/{self.aggregation}/empty={self.empty_score:g}"


def strategies() -> list[Strategy]:
    """Random, then every score × aggregation × emptyScore."""
    arms = [Strategy("random")]
    for empty in EMPTY_SCORES:
        arms.extend(Strategy(s, a, empty) for s in SCORES for a in AGGREGATIONS)
    return arms


@dataclass
class CachedScenes:
    """Scenes with their window features stacked once (float32) for batched scoring."""

    scenes: DetectionScenes
    windows: list[SceneWindows]
    features: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, scenes: DetectionScenes) -> CachedScenes:
        windows = [scene_windows(image) for image in scenes.images]
        sizes = np.array([len(w.boxes) for w in windows])
        return cls(scenes, windows, np.vstack([w.features for w in windows]), np.r_[0, np.cumsum(sizes)])

    def predict(self, detector: Detector, which: Sequence[int]) -> dict[int, list[dict]]:
        """Box records (as the adapter uploads them) of the scenes ``which``."""
        probabilities = class_probabilities(detector, self.features)  # all windows: a view, no copy
        return {
            i: detection_records(
                detections_from_probabilities(
                    detector.classes,
                    self.windows[i].boxes,
                    probabilities[self.offsets[i] : self.offsets[i + 1]],
                )
            )
            for i in which
        }


def truth_frame(scenes: DetectionScenes) -> pd.DataFrame:
    """Ground-truth boxes in ``nodes.metrics`` form."""
    rows = [
        (i, label, *box)
        for i, (boxes, labels) in enumerate(zip(scenes.boxes, scenes.labels, strict=True))
        for box, label in zip(boxes.tolist(), labels, strict=True)
    ]
    return pd.DataFrame(rows, columns=["item_id", "label", "left", "top", "right", "bottom"])


def box_ap(test: CachedScenes, truth: pd.DataFrame, detector: Detector) -> float:
    """AP@0.5 (mean over labels) of ``detector`` on the test scenes."""
    records = test.predict(detector, range(len(test.scenes)))
    rows = [
        (i, r["label"], r["left"], r["top"], r["right"], r["bottom"], r["confidence"])
        for i, found in records.items()
        for r in found
    ]
    predictions = pd.DataFrame(rows, columns=["item_id", "label", "left", "top", "right", "bottom", "confidence"])
    return float(evaluate_detections(truth, predictions, 0.5).mean_ap)


def choose(arm: Strategy, records: dict[int, list[dict]], pool: list[int], budget: int, seed: int) -> list[int]:
    """The node's choice of ``budget`` scenes of ``pool`` from the box records."""
    scored = score_items(
        {i: records[i] for i in pool},
        pool,
        arm.score,
        aggregation=arm.aggregation,
        empty_score=arm.empty_score,
        seed=seed,
        n_classes=len(LABELS),
    )
    return [int(i) for i in choose_items(scored.scores, pool, budget, seed=seed).item_ids]


def run_seed(seed: int, test: CachedScenes, truth: pd.DataFrame, args: argparse.Namespace) -> list[dict]:
    """Every arm on one seed: same pool, same initial labels, same test set."""
    scenes = make_scenes(args.pool, seed=1000 + seed, source="train")
    pool = CachedScenes.of(scenes)
    initial = np.random.default_rng(seed).permutation(args.pool)[: args.initial].tolist()
    fitted: dict[frozenset, tuple[Detector, float]] = {}  # arms that chose the same scenes share a fit

    def fit(labelled: list[int]) -> tuple[Detector, float]:
        key = frozenset(labelled)
        if key not in fitted:
            detector = fit_detector(
                [scenes.images[i] for i in labelled],
                [scenes.boxes[i] for i in labelled],
                [scenes.labels[i] for i in labelled],
                LABELS,
                seed=seed,
                windows=[pool.windows[i] for i in labelled],
            )
            fitted[key] = (detector, box_ap(test, truth, detector))
        return fitted[key]

    detector0, ap0 = fit(initial)
    records0 = pool.predict(detector0, range(args.pool))
    rows = []
    for arm in strategies():
        labelled, detector, records = list(initial), detector0, records0
        rows.append({"strategy": arm.name, "seed": seed, "round": 0, "n_labels": len(labelled), "ap50": ap0})
        for round_ in range(1, args.rounds + 1):
            unlabelled = sorted(set(range(args.pool)) - set(labelled))
            labelled += choose(arm, records, unlabelled, args.budget, seed=seed * 100 + round_)
            detector, ap = fit(labelled)
            rows.append({"strategy": arm.name, "seed": seed, "round": round_, "n_labels": len(labelled), "ap50": ap})
            if round_ < args.rounds:
                records = pool.predict(detector, sorted(set(range(args.pool)) - set(labelled)))
    return rows


def wins_ties_losses(results: pd.DataFrame, tie: float) -> pd.DataFrame:
    """Per strategy: seeds whose final-round AP beats random by more than ``tie``, within it, below it.

    Examples
    --------
    >>> r = pd.DataFrame({"strategy": ["random", "a", "random", "a"], "seed": [0, 0, 1, 1],
    ...                   "round": [1, 1, 1, 1], "ap50": [0.5, 0.6, 0.5, 0.5]})
    >>> wins_ties_losses(r, 0.005).loc["a"].tolist()
    [1, 1, 0]
    """
    last = results[results["round"] == results["round"].max()].pivot(index="seed", columns="strategy", values="ap50")
    delta = last.sub(last["random"], axis=0)
    return pd.DataFrame(
        {"wins": (delta > tie).sum(), "ties": (delta.abs() <= tie).sum(), "losses": (delta < -tie).sum()}
    ).drop(index="random")


def report(results: pd.DataFrame, tie: float) -> str:
    """The printed table: one line per strategy."""
    rounds = sorted(results["round"].unique())
    labels = results.groupby("round")["n_labels"].first()
    wtl = wins_ties_losses(results, tie)
    header = f"{'strategy':36s}" + "".join(f"  {'AP@0.5 ' + str(labels[r]) + ' imgs':>16s}" for r in rounds)
    lines = [header + "   W/T/L vs random   final Δ vs random"]
    random_final = results[(results["strategy"] == "random") & (results["round"] == rounds[-1])]["ap50"].mean()
    for name in results["strategy"].unique():
        mine = results[results["strategy"] == name]
        cells = []
        for r in rounds:
            values = mine[mine["round"] == r]["ap50"]
            cells.append(f"  {values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f}")
        final = mine[mine["round"] == rounds[-1]]["ap50"].mean()
        if name == "random":
            tail = "   (reference)"
        else:
            w, t, l_ = wtl.loc[name].tolist()
            tail = f"   {w:2d}/{t:2d}/{l_:2d}          {final - random_final:+.3f}"
        lines.append(f"{name:36s}" + "".join(f"{c:>18s}" for c in cells) + tail)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--pool", type=int, default=150, help="unlabelled scenes per seed")
    parser.add_argument("--test", type=int, default=100, help="fixed test scenes")
    parser.add_argument("--initial", type=int, default=20, help="random labelled scenes to start from")
    parser.add_argument("--budget", type=int, default=20, help="scenes labelled per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tie", type=float, default=0.005, help="|Δ AP| at or below this is a tie")
    parser.add_argument("--quick", action="store_true", help="3 seeds, 60 test scenes (a smoke run)")
    parser.add_argument("--jobs", type=int, default=2, help="seeds run in this many processes (the machine's 2 cores)")
    parser.add_argument("--csv", help="also write the per-seed rows here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.test = 3, 60
    logging.getLogger("nodes").setLevel(logging.ERROR)
    started = time.perf_counter()
    test_scenes = make_scenes(args.test, seed=TEST_SEED, source="test")
    test = CachedScenes.of(test_scenes)
    truth = truth_frame(test_scenes)
    rows = []
    if args.jobs > 1:  # seeds in forked processes sharing the test windows (copy-on-write)
        import multiprocessing

        context = multiprocessing.get_context("fork")
        with context.Pool(args.jobs) as workers:
            jobs = [workers.apply_async(run_seed, (seed, test, truth, args)) for seed in range(args.seeds)]
            for seed, job in enumerate(jobs):
                rows.extend(job.get())
                print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    else:
        for seed in range(args.seeds):
            rows.extend(run_seed(seed, test, truth, args))
            print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    results = pd.DataFrame(rows)
    if args.csv:
        results.to_csv(args.csv, index=False)
    print(
        f"Detection active learning: {args.seeds} seeds, pool {args.pool} scenes, test {args.test} scenes "
        f"(fixed), {args.initial} initial + {args.rounds} × {args.budget} chosen; AP@0.5 mean ± std; "
        f"W/T/L = seeds where the final AP beats random by > {args.tie}, ties, loses"
    )
    print(report(results, args.tie))
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
