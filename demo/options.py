"""The options of ``python main.py demo`` as one validated value (:class:`DemoOptions`), and the
demo's constants. No dtlpy, no platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from demo.data import N_DIGITS
from demo.tasks import DEFAULT_TASK, TASK_OPTION_DEFAULTS, TASKS
from demo.template import TEMPLATE_PATH

#: The whole demo should take less than this, wall time, on a 2-core machine.
DEMO_TARGET_SECONDS = 120
MARGIN, RANDOM = "margin", "random"
STUDY_SEEDS = 10
WAIT_S = 900.0  # the longest the demo waits for the platform to go idle (a stuck run fails, never hangs)


@dataclass(frozen=True)
class DemoOptions:
    """Validated options of ``python main.py demo``."""

    seed: int = 0
    rounds: int = 2
    out: Path = Path("active_learning_demo")
    keep_running: bool = False
    items: int = 1000
    budget: int = 50
    initial: int = 100
    arrivals: int = 200
    study_seeds: int = STUDY_SEEDS
    test_fraction: float = 0.2
    task: str = DEFAULT_TASK
    template: Path = TEMPLATE_PATH

    @classmethod
    def from_args(cls, args) -> DemoOptions:
        """Build from argparse results; errors name the option, the bad value and the fix.

        Examples
        --------
        >>> import argparse
        >>> DemoOptions.from_args(argparse.Namespace(rounds=0))
        Traceback (most recent call last):
        ...
        ValueError: --rounds: 0 is not an integer in [1, 10]; example: --rounds 2
        """
        values = {k: v for k, v in vars(args).items() if k in cls.__dataclass_fields__ and v is not None}

        def integer(name: str, low: int, high: int, example: str) -> None:
            if name in values:
                value = values[name]
                if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                    flag = name.replace("_", "-")
                    raise ValueError(
                        f"--{flag}: {value!r} is not an integer in [{low}, {high}]; example: --{flag} {example}"
                    )

        integer("seed", 0, 2**32 - 1, "0")
        integer("rounds", 1, 10, "2")
        integer("items", 50, N_DIGITS, "300")
        integer("budget", 1, N_DIGITS, "100")
        integer("initial", 10, N_DIGITS, "100")
        integer("arrivals", 1, N_DIGITS, "300")
        integer("study_seeds", 0, 100, "10")
        if "task" in values and values["task"] not in TASKS:
            raise ValueError(f"--task: {values['task']!r} is not a demo task; one of {', '.join(sorted(TASKS))}")
        for name, value in TASK_OPTION_DEFAULTS.get(values.get("task", cls.task), {}).items():
            values.setdefault(name, value)  # the task's size when the command line leaves it out
        initial, items = values.get("initial", cls.initial), values.get("items", cls.items)
        if initial >= items:
            raise ValueError(
                f"--initial: {initial} labelled items leave no pool in --items {items}; "
                f"give fewer, e.g. --initial {max(10, items // 5)}"
            )
        rounds = values.get("rounds", cls.rounds)
        pool = items - initial - int(round(items * cls.test_fraction))
        if pool < rounds:
            raise ValueError(
                f"--items: {items} items leave {max(pool, 0)} new raw items for {rounds} rounds; "
                f"give more, e.g. --items {initial + rounds * 100 + items // 4}"
            )
        for name in ("out", "template"):
            if name in values:
                # relative to where the user runs the command, whatever folder the program runs from
                values[name] = Path(values[name]).expanduser().absolute()
        return cls(**values)
