"""Entry point of the Active Learning app.

``ServiceRunner`` is the class the Dataloop runner instantiates for every module in
``dataloop.json``; each method is a thin adapter that hands the platform entities to its
node package in ``nodes/``. Run as a script, this file is also the command line:
``python main.py demo | split | compare`` (``--help`` for each).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def demo_command(argv: list[str]) -> list[str] | None:
    """The command line of the demo program that ``python main.py [-v] demo ...`` stands for, else None.

    The demo drives this module's ``ServiceRunner``, so it imports ``main``; running it as its
    own program (``demo/__main__.py``, see its docstring for why not ``-m``) keeps that dependency
    one-way, and lets the demo keep dtlpy's files out of ``~/.dataloop`` before dtlpy is first
    imported.

    Examples
    --------
    >>> command = demo_command(["-v", "demo", "--rounds", "1"])
    >>> Path(command[1]).relative_to(ROOT).as_posix(), command[2:]
    ('demo/__main__.py', ['-v', '--rounds', '1'])
    >>> demo_command(["split", "--dataset", "demo"]) is None
    True
    """
    options = [arg for arg in argv[:1] if arg in ("-v", "--verbose")]
    rest = argv[len(options) :]
    if not rest or rest[0] != "demo":
        return None
    return [sys.executable, str(ROOT / "demo" / "__main__.py"), *options, *rest[1:]]


def build_parser() -> argparse.ArgumentParser:
    """The ``python main.py`` command line; each node's options live in its ``cli`` module."""
    from emulator import serve as serve_cli
    from nodes.compare_models import cli as compare_cli
    from nodes.data_split import cli as split_cli

    parser = argparse.ArgumentParser(prog="python main.py", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True)
    # listed for --help only: main() hands "demo" to its own program before parsing (see demo_command)
    commands.add_parser("demo", help="run an end-to-end active-learning round on the embedded local platform")
    for name, module, help_text in (
        ("split", split_cli, "split a whole dataset into subsets (batch Model Data Split)"),
        ("compare", compare_cli, "compare two models from a terminal and write a report"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_cli_arguments(sub)
        sub.set_defaults(run=module.run_cli)
    help_text = "run the local Dataloop platform alone, for your own dtlpy scripts and dlp (Ctrl-C stops it)"
    sub = commands.add_parser("platform", help=help_text, description=help_text)
    serve_cli.add_cli_arguments(sub)
    return parser


if __name__ == "__main__":
    # before dtlpy is imported: --help, bad options, the demo and the local platform need no dtlpy
    # login state (importing it takes seconds and writes a log file into ~/.dataloop)
    if (_demo := demo_command(sys.argv[1:])) is not None:
        if hasattr(os, "execv") and os.name == "posix":
            # the demo replaces this process: Ctrl-C and SIGTERM reach it directly, so its clean-up
            # runs (a parent waiting in subprocess.call would kill it 0.25 s after Ctrl-C)
            sys.stdout.flush()
            os.execv(_demo[0], _demo)
        sys.exit(subprocess.call(_demo))  # the caller's folder stays the working folder (--out rel)
    _ARGS = build_parser().parse_args(sys.argv[1:])
    if _ARGS.command == "platform":
        from emulator.serve import serve

        sys.exit(serve(_ARGS.dataloop_path, _ARGS.project or None))

import dtlpy as dl  # noqa: E402

logger = logging.getLogger(__name__)


class ServiceRunner(dl.BaseServiceRunner):
    """The service class of every module (``model_data_split``, ``create_new_model``,
    ``compare_models``, ``select_for_labeling``). The runner passes ``progress`` and
    ``context`` by name."""

    def data_split(self, item: dl.Item, progress: dl.Progress = None, context: dl.Context = None) -> dl.Item:
        """Model Data Split: route ``item`` to one subset and tag it."""
        from nodes import data_split

        return data_split.run_node(item=item, progress=progress, context=context)

    def create_new_model(
        self,
        base_model: dl.Model,
        dataset: dl.Dataset,
        train_subset: dict = None,
        validation_subset: dict = None,
        model_configuration: dict = None,
        progress: dl.Progress = None,
        context: dl.Context = None,
    ) -> tuple:
        """Create New Model: clone ``base_model`` into a new version ready to fine-tune."""
        from nodes import create_new_model

        return create_new_model.run_node(
            base_model=base_model,
            dataset=dataset,
            train_subset=train_subset,
            validation_subset=validation_subset,
            model_configuration=model_configuration,
            progress=progress,
            context=context,
        )

    def compare_models(
        self,
        previous_model: dl.Model,
        new_model: dl.Model,
        compare_config: dict = None,
        dataset: dl.Dataset = None,
        progress: dl.Progress = None,
        context: dl.Context = None,
    ) -> dl.Model:
        """Compare Models: return the winner; action ``update model`` or ``discard``."""
        from nodes import compare_models

        return compare_models.run_node(
            previous_model=previous_model,
            new_model=new_model,
            compare_config=compare_config,
            dataset=dataset,
            progress=progress,
            context=context,
        )

    def score_item(self, item: dl.Item, progress: dl.Progress = None, context: dl.Context = None) -> dl.Item:
        """Uncertainty Gate: score ``item`` from its predictions; action ``label`` or ``skip``."""
        from nodes import select_for_labeling

        return select_for_labeling.run_gate(item=item, progress=progress, context=context)

    def select_items(
        self,
        model: dl.Model,
        dataset: dl.Dataset,
        selection_config: dict = None,
        progress: dl.Progress = None,
        context: dl.Context = None,
    ) -> list:
        """Select for Labeling: choose ``budget`` items of the pool for labelling; returns them."""
        from nodes import select_for_labeling

        return select_for_labeling.run_selection(
            model=model, dataset=dataset, selection_config=selection_config, progress=progress, context=context
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if (command := demo_command(argv)) is not None:
        return subprocess.call(command)
    args = build_parser().parse_args(argv)
    if args.command == "platform":
        from emulator.serve import serve

        return serve(args.dataloop_path, args.project or None)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())  # parses again: cheap, and main() stays callable from tests
