"""Does choosing by uncertainty beat random labelling? scikit-learn digits, measured in one run.

The setup of issue 15: scikit-learn's bundled digits (1,797 8×8 images, no download), a fixed
stratified test split of 450 digits, a multinomial logistic regression on standardised pixels,
100 seeded random initial labels, then 2 rounds × 100 labels chosen by each strategy, over 20
seeds. Every choice goes through ``nodes.select_for_labeling`` in memory, as the pipeline does:
the model's ``predict_proba`` top-3 becomes class prediction records (what a model adapter
uploads), :func:`score_items` scores them and :func:`choose_items` picks the batch. The
``margin+cluster`` strategy clusters on the standardised pixels (a stand-in for a feature set).

Printed: mean ± std of test accuracy and macro AP (``nodes.metrics.evaluate_classification`` on
the full class probabilities) per round, the area under the learning curve (accuracy averaged
over 100 → 300 labels, trapezoid), and per strategy the seeds where it beats random at 300
labels (same seed = same initial labels). Exits non-zero when margin wins fewer than 16 of 20.

Usage: ``.venv/bin/python benchmarks/bench_al_digits.py [--seeds 20]``.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from nodes.metrics import evaluate_classification  # noqa: E402
from nodes.select_for_labeling import choose_items, score_items  # noqa: E402

#: name -> (scoring strategy, diversity)
STRATEGIES = {
    "random": ("random", "none"),
    "least_confidence": ("least_confidence", "none"),
    "margin": ("margin", "none"),
    "entropy": ("entropy", "none"),
    "margin+cluster": ("margin", "cluster"),
}
TOP_K = 3
TEST_SIZE = 450
MIN_MARGIN_WINS = 16


@dataclass(frozen=True)
class DigitsStudy:
    """Per (strategy, seed, round) figures of the study; :meth:`summary` and :meth:`wins` aggregate them."""

    results: pd.DataFrame  # columns: strategy, seed, round, n_labels, accuracy, macro_ap

    def summary(self) -> pd.DataFrame:
        """Mean and std of accuracy and macro AP per strategy and number of labels."""
        grouped = self.results.groupby(["strategy", "n_labels"], sort=False)
        return grouped[["accuracy", "macro_ap"]].agg(["mean", "std"])

    def area_under_curve(self) -> pd.DataFrame:
        """Accuracy averaged over the label range (trapezoid), mean and std over seeds, per strategy."""

        def auc(frame: pd.DataFrame) -> float:
            frame = frame.sort_values("n_labels")
            x, y = frame["n_labels"].to_numpy(float), frame["accuracy"].to_numpy(float)
            return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))

        per_seed = self.results.groupby(["strategy", "seed"], sort=False)[["n_labels", "accuracy"]].apply(auc)
        return per_seed.groupby(level="strategy", sort=False).agg(["mean", "std"])

    def wins(self, baseline: str = "random") -> pd.DataFrame:
        """Per strategy: seeds where its final accuracy beats / ties / loses to ``baseline``."""
        final = self.results[self.results["round"] == self.results["round"].max()]
        table = final.pivot(index="seed", columns="strategy", values="accuracy")
        rows = {}
        for name in self.results["strategy"].unique():
            if name == baseline:
                continue
            diff = table[name] - table[baseline]
            rows[name] = {
                "wins": int((diff > 0).sum()),
                "ties": int((diff == 0).sum()),
                "losses": int((diff < 0).sum()),
            }
        return pd.DataFrame.from_dict(rows, orient="index")


def _prediction_records(proba: np.ndarray, item_ids: Sequence[str], top_k: int = TOP_K) -> pd.DataFrame:
    """Top-k class probabilities per item as prediction records, as a model adapter uploads them."""
    top = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
    rows = np.repeat(np.arange(len(item_ids)), top_k)
    return pd.DataFrame(
        {
            "item_id": np.asarray(item_ids, dtype=object)[rows],
            "label": top.ravel().astype(str),
            "confidence": proba[rows, top.ravel()],
            "type": "class",
        }
    )


def _macro_ap(proba: np.ndarray, y: np.ndarray) -> float:
    ids = np.arange(len(y))
    truth = pd.DataFrame({"item_id": ids, "label": y})
    pred = pd.DataFrame(
        {
            "item_id": np.repeat(ids, proba.shape[1]),
            "label": np.tile(np.arange(proba.shape[1]), len(y)),
            "confidence": proba.ravel(),
        }
    )
    return float(evaluate_classification(truth, pred, item_ids=ids).mean_ap)


def run_digits_study(
    seeds: Iterable[int] = range(20),
    strategies: Sequence[str] = tuple(STRATEGIES),
    initial: int = 100,
    rounds: int = 2,
    batch: int = 100,
    test_size: int = TEST_SIZE,
) -> DigitsStudy:
    """Run the digits active-learning study; see the module docstring.

    Parameters
    ----------
    seeds : iterable of int
        One run per seed (the seed draws the initial labels and seeds the selection).
    strategies : sequence of str
        Keys of :data:`STRATEGIES`.
    initial, rounds, batch : int
        Initial random labels, selection rounds, labels chosen per round.
    test_size : int
        Digits in the fixed stratified test split.

    Returns
    -------
    DigitsStudy
    """
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"strategies: {unknown} are not among {', '.join(STRATEGIES)}")
    digits = load_digits()
    x_pool, x_test, y_pool, y_test = train_test_split(
        digits.data, digits.target, test_size=test_size, stratify=digits.target, random_state=0
    )
    scaler = StandardScaler().fit(x_pool)
    x_pool, x_test = scaler.transform(x_pool), scaler.transform(x_test)
    pool_ids = np.array([f"digit{i:04d}" for i in range(len(y_pool))], dtype=object)
    rows = []
    for seed in seeds:
        start = np.random.default_rng(seed).choice(len(y_pool), initial, replace=False)
        for name in strategies:
            strategy, diversity = STRATEGIES[name]
            labelled = np.zeros(len(y_pool), dtype=bool)
            labelled[start] = True
            for round_no in range(rounds + 1):
                model = LogisticRegression(C=1.0, max_iter=300, tol=1e-3)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # ConvergenceWarning at a modest max_iter
                    model.fit(x_pool[labelled], y_pool[labelled])
                proba_test = _full_proba(model, x_test)
                accuracy = float((proba_test.argmax(axis=1) == y_test).mean())
                rows.append((name, seed, round_no, int(labelled.sum()), accuracy, _macro_ap(proba_test, y_test)))
                if round_no == rounds:
                    break
                unlabelled = np.flatnonzero(~labelled)
                ids = pool_ids[unlabelled]
                records = _prediction_records(_full_proba(model, x_pool[unlabelled]), ids)
                scored = score_items(records, ids, strategy, seed=seed)
                chosen = choose_items(
                    scored.scores,
                    ids,
                    batch,
                    diversity,
                    features=x_pool[unlabelled] if diversity != "none" else None,
                    seed=seed,
                )
                position = pd.Index(ids).get_indexer(list(chosen.item_ids))
                labelled[unlabelled[position]] = True
    columns = ["strategy", "seed", "round", "n_labels", "accuracy", "macro_ap"]
    return DigitsStudy(pd.DataFrame(rows, columns=columns))


def _full_proba(model, x: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """``predict_proba`` over all classes (a class absent from the labels gets probability 0)."""
    proba = np.zeros((len(x), n_classes))
    proba[:, model.classes_] = model.predict_proba(x)
    return proba


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    study = run_digits_study(range(args.seeds))
    elapsed = time.perf_counter() - started
    pd.set_option("display.width", 160)
    summary = study.summary()
    print(f"digits: {TEST_SIZE} test digits, 100 initial labels + 2 rounds x 100, {args.seeds} seeds ({elapsed:.1f} s)")
    print("\nmean ± std per number of labels")
    for (name, n_labels), row in summary.iterrows():
        print(
            f"  {name:<17} {n_labels:>4} labels  accuracy {row[('accuracy', 'mean')]:.3f} ± {row[('accuracy', 'std')]:.3f}"
            f"  macro AP {row[('macro_ap', 'mean')]:.3f} ± {row[('macro_ap', 'std')]:.3f}"
        )
    print("\narea under the learning curve (mean accuracy over 100 -> 300 labels)")
    for name, row in study.area_under_curve().iterrows():
        print(f"  {name:<17} {row['mean']:.4f} ± {row['std']:.4f}")
    wins = study.wins()
    print(f"\nagainst random at 300 labels (of {args.seeds} seeds)")
    for name, row in wins.iterrows():
        print(f"  {name:<17} wins {row['wins']:>2}  ties {row['ties']:>2}  losses {row['losses']:>2}")
    needed = int(np.ceil(MIN_MARGIN_WINS * args.seeds / 20))
    margin_wins = int(wins.loc["margin", "wins"])
    verdict = "ok" if margin_wins >= needed else "MISSED"
    print(f"\nmargin wins {margin_wins}/{args.seeds} against random (target >= {needed}): {verdict}")
    return 0 if margin_wins >= needed else 1


if __name__ == "__main__":
    sys.exit(main())
