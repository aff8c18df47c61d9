"""The multi-seed summary of the report: ``benchmarks/bench_al.py``'s digits study, in memory.

The full-platform run is one seed; whether margin sampling beats random labelling is a question
about many. :func:`run_study` runs the benchmark's own :func:`run_digits_study` (scikit-learn
digits, logistic regression, selection through ``nodes.select_for_labeling`` in memory, no
platform) for margin, margin + cluster diversity and random over ``seeds``, and
:func:`summarise` turns its table into the plain numbers the report shows. The benchmark module
is loaded from its file (``benchmarks/`` is not a package); nothing under ``nodes/`` or ``main``
imports the demo. :func:`start_study` runs it in a second process, so it uses the other core while
the platform run keeps the first one busy.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_al.py"
STUDY_STRATEGIES = ("margin", "margin+cluster", "random")


def load_benchmark():
    """The ``bench_al`` module, loaded from ``benchmarks/`` (once per process)."""
    name = "bench_al"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class StrategyStats:
    """Mean and standard deviation over seeds, per round, of one strategy."""

    name: str
    labelled: tuple[int, ...]
    accuracy_mean: tuple[float, ...]
    accuracy_std: tuple[float, ...]
    ap_mean: tuple[float, ...]
    ap_std: tuple[float, ...]
    wins: int | None = None  # seeds where the final accuracy beats random (None for random)
    ties: int | None = None
    losses: int | None = None
    ap_wins: int | None = None  # the same, on the final mean AP
    ap_ties: int | None = None
    ap_losses: int | None = None


@dataclass(frozen=True)
class StudySummary:
    """What the report shows of the multi-seed study."""

    seeds: int
    test_size: int
    initial: int
    batch: int
    rounds: int
    strategies: tuple[StrategyStats, ...]
    seconds: float

    def strategy(self, name: str) -> StrategyStats:
        return next(s for s in self.strategies if s.name == name)


def run_study(
    seeds: int = 10,
    strategies: Sequence[str] = STUDY_STRATEGIES,
    initial: int = 100,
    rounds: int = 2,
    batch: int = 100,
) -> StudySummary:
    """Run the benchmark's study over ``range(seeds)`` and summarise it (pure computation, no platform).

    Examples
    --------
    >>> summary = run_study(seeds=2, strategies=("margin", "random"), rounds=1)   # doctest: +SKIP
    >>> summary.strategy("margin").wins + summary.strategy("margin").losses <= 2  # doctest: +SKIP
    True
    """
    import time

    import threadpoolctl

    bench = load_benchmark()
    started = time.process_time()
    with threadpoolctl.threadpool_limits(1):  # one core: the platform run has the other
        study = bench.run_digits_study(
            seeds=range(seeds), strategies=tuple(strategies), initial=initial, rounds=rounds, batch=batch
        )
    return summarise(study, seeds, bench.TEST_SIZE, initial, batch, rounds, time.process_time() - started)


def summarise(study, seeds: int, test_size: int, initial: int, batch: int, rounds: int, seconds: float) -> StudySummary:
    """:class:`StudySummary` from a ``DigitsStudy`` (its ``summary()`` and ``wins()`` tables)."""
    table = study.summary()
    wins = study.wins()
    ap_wins = metric_wins(study.results, "macro_ap")
    stats = []
    for name in dict.fromkeys(study.results["strategy"]):
        rows = table.loc[name].sort_index()
        won = wins.loc[name] if name in wins.index else None
        stats.append(
            StrategyStats(
                name=name,
                labelled=tuple(int(n) for n in rows.index),
                accuracy_mean=tuple(float(v) for v in rows[("accuracy", "mean")]),
                accuracy_std=tuple(float(v) for v in rows[("accuracy", "std")].fillna(0.0)),
                ap_mean=tuple(float(v) for v in rows[("macro_ap", "mean")]),
                ap_std=tuple(float(v) for v in rows[("macro_ap", "std")].fillna(0.0)),
                wins=None if won is None else int(won["wins"]),
                ties=None if won is None else int(won["ties"]),
                losses=None if won is None else int(won["losses"]),
                **({} if name not in ap_wins else {f"ap_{k}": v for k, v in ap_wins[name].items()}),
            )
        )
    return StudySummary(seeds, test_size, initial, batch, rounds, tuple(stats), seconds)


def metric_wins(results, metric: str, baseline: str = "random") -> dict[str, dict[str, int]]:
    """Per strategy: seeds where its final ``metric`` beats / ties / loses to ``baseline``'s.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"seed": [0, 0, 1, 1], "round": 1, "strategy": ["m", "random"] * 2, "x": [.9, .8, .7, .8]})
    >>> metric_wins(rows, "x")
    {'m': {'wins': 1, 'ties': 0, 'losses': 1}}
    """
    final = results[results["round"] == results["round"].max()]
    table = final.pivot(index="seed", columns="strategy", values=metric)
    out = {}
    for name in dict.fromkeys(results["strategy"]):
        if name == baseline or baseline not in table:
            continue
        diff = table[name] - table[baseline]
        out[name] = {"wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum())}
    return out


def _study_child(connection, seeds: int, rounds: int, batch: int, initial: int) -> None:
    try:
        connection.send(run_study(seeds, STUDY_STRATEGIES, initial, rounds, batch))
    except BaseException as error:  # noqa: BLE001 - handed to the parent, which raises it
        connection.send(RuntimeError(f"the multi-seed study failed: {error!r}"))
    finally:
        connection.close()


class StudyRun:
    """:func:`run_study` running in a second (spawned, daemon) process: :meth:`result` waits for
    it, :meth:`stop` ends it whatever it is doing (the demo calls it on every exit path)."""

    def __init__(self, seeds: int, rounds: int, batch: int, initial: int):
        context = get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_study_child, args=(send, seeds, rounds, batch, initial), daemon=True, name="demo-study"
        )
        self.process.start()
        send.close()

    def result(self) -> StudySummary:
        """The study's summary (blocks until the process sends it)."""
        value = self._receive.recv()
        self.process.join(timeout=30)
        if isinstance(value, BaseException):
            raise value
        return value

    def stop(self) -> None:
        """End the process if it still runs, and close the pipe."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)
        self._receive.close()


def start_study(seeds: int = 10, rounds: int = 2, batch: int = 100, initial: int = 100) -> StudyRun:
    """Start :func:`run_study` in a second process (see :class:`StudyRun`)."""
    return StudyRun(seeds, rounds, batch, initial)
