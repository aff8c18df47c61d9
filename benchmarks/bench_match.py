"""Time of the local platform's ``$match`` automaton (``emulator.dql``) at its work budget.

The tests count the automaton's work (``tests/test_platform_conformance.py``: every accepted
pattern stays within ``dql.MAX_MATCH_WORK`` steps, linear in the value); this prints what that
work costs in time on this machine, next to a reference measured in the same run: Python's ``re``
on a pattern it matches without backtracking, over the same value. Best of ``--repeat`` runs each
(the automaton with a cold transition cache, its dearest case).

Usage: ``.venv/bin/python benchmarks/bench_match.py [--repeat 5]``; exits non-zero when the time
per work unit, scaled to the whole budget, exceeds ``--max-seconds-at-budget`` (default 1 s: the
budget's claim in emulator/README.md). Measured 2026-12-06 on the shared 2-core machine: 0.3 to
0.55 s at the budget, 280x to 650,000x Python's ``re`` on a safe pattern (which does no work per
state).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from emulator import dql  # noqa: E402

#: (pattern, value) pairs a backtracking engine needs seconds to minutes for (the conformance tests').
CASES = [
    ("a*a*a*b", "a" * 1000),
    (r"\d+\d+\d+x", "1" * 1000),
    (r"\s*\s*\s*!", " " * 1000),
    ("[a-z]+[a-z]+[a-z]+!", "a" * 1000),
    ("x[ab]{0,300}c", "x" + "ab" * 499 + "c"),
    ("." * 999, "x" * 1000),
]


def _best(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-seconds-at-budget", type=float, default=1.0)
    args = parser.parse_args(argv)
    failed = False
    print(f"{'pattern':<24} {'automaton':>10} {'re (safe)':>10} {'ratio':>7} {'s at budget':>12}")
    for pattern, value in CASES:
        program = dql._Program(pattern, "name")
        work = {"visits": 0}
        step = program._step

        def counted(*a, step=step, work=work):
            result, visited = step(*a)
            work["visits"] += visited
            return result, visited

        def automaton(program=program, value=value):
            program.cache.clear()  # a cold cache: the dearest case
            return program.search(value)

        reference = re.compile(re.escape(value[:1]) + "+")  # linear in re as well
        ours = min(_best(automaton, 1) for _ in range(args.repeat))
        theirs = _best(lambda reference=reference, value=value: reference.search(value), args.repeat)
        program._step = counted
        automaton()
        del program._step
        units = len(value) * (2 if program.assertions else 1) + work["visits"] * dql._VISIT_COST
        at_budget = ours / max(units, 1) * dql.MAX_MATCH_WORK
        failed |= at_budget > args.max_seconds_at_budget
        print(f"{pattern[:24]:<24} {ours * 1e3:9.2f}ms {theirs * 1e3:9.3f}ms {ours / theirs:6.0f}x {at_budget:11.2f}s")
    print(f"budget: {dql.MAX_MATCH_WORK:,} work units per value; limit {args.max_seconds_at_budget} s at the budget")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
