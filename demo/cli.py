"""The demo's command line: ``python -m demo`` / ``python main.py demo`` options and entry."""

from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger(__name__)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python main.py demo``."""
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="active-learning rounds (default: %(default)s)")
    parser.add_argument(
        "--out", default="active_learning_demo", metavar="DIR", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the local platform up after the run and print how to point dtlpy at it (Ctrl-C to stop)",
    )
    parser.add_argument(
        "--items", type=int, default=None, help="how many images to use (default: 1000 digits; detection: 240 scenes)"
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="label budget per round: the annotator labels at most this many new items (default: 50; detection: 20)",
    )
    parser.add_argument(
        "--initial", type=int, default=None, help="size of the initial labelled pool (default: 100; detection: 40)"
    )
    parser.add_argument(
        "--arrivals",
        type=int,
        default=None,
        help="new raw items uploaded per round (at most an equal share of the pool; default: 200; detection: 60)",
    )
    parser.add_argument(
        "--task",
        default="classification",
        help="what the demo learns: classification (default)" + _other_tasks(),
    )
    parser.add_argument(
        "--study-seeds",
        type=int,
        default=None,
        help="seeds of the in-memory digits study in the report (0 skips it; default: 10; detection: 0)",
    )


def _other_tasks() -> str:
    from demo.tasks import TASKS

    others = sorted(set(TASKS) - {"classification"})
    return f", or {', '.join(others)}" if others else ""


def build_parser() -> argparse.ArgumentParser:
    """The demo's parser (``python main.py demo --help``)."""
    parser = argparse.ArgumentParser(
        prog="python main.py demo",
        description="install the Active Learning pipeline template on the embedded local platform and let it run "
        "rounds of active learning (margin vs random selection), then write a report",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    add_cli_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the demo; the exit code."""
    args = build_parser().parse_args(argv)
    # dtlpy sets its logger to DEBUG when first imported: import it before logging is configured
    # and quietened, so neither step is undone
    import dtlpy  # noqa: F401

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run_cli(args)


def run_cli(args: argparse.Namespace) -> int:
    """Run the demo from parsed arguments; 0 on success, 2 on bad options."""
    from demo.run import DemoOptions, run_demo

    try:
        options = DemoOptions.from_args(args)
    except ValueError as error:
        print(f"error: {error}")
        return 2
    _quiet_libraries(verbose=bool(getattr(args, "verbose", False)))
    # progress bars only on a terminal: a log file or CI gets one line per step
    try:
        run_demo(options, progress_bars=sys.stderr.isatty())
    except KeyboardInterrupt:  # Ctrl-C: run_demo stopped the platform and removed its files
        print("interrupted: the local platform stopped; nothing was left in the temporary folder")
        return 130
    return 0


def _quiet_libraries(verbose: bool) -> None:
    """Keep the terminal to one line per step: library INFO logs go only with ``-v``."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # aiohttp's verify_ssl notice inside dtlpy
    if verbose:
        return
    for name in ("emulator", "nodes", "demo", "main", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("dtlpy", "ModelAdapter"):  # the SSL notice for 127.0.0.1 and per-model chatter
        logging.getLogger(name).setLevel(logging.ERROR)
