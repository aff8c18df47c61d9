"""Entry point of the Active Learning app.

``ServiceRunner`` is the class the Dataloop runner instantiates for each of the three
modules in ``dataloop.json``; each method is a thin adapter that hands the platform
entities to the node's module in ``nodes/``. Run as a script, this file is also the
command line: ``python main.py demo | split | compare`` (``--help`` for each).
"""

from __future__ import annotations

import argparse
import logging
import sys

if __name__ == "__main__":  # the demo keeps dtlpy's files out of ~/.dataloop; must run before dtlpy is imported
    from demo.isolation import isolate_dataloop_path

    isolate_dataloop_path(sys.argv[1:])

import dtlpy as dl  # noqa: E402

logger = logging.getLogger(__name__)


class ServiceRunner(dl.BaseServiceRunner):
    """The service class of all three modules (``model_data_split``, ``create_new_model``,
    ``compare_models``). The runner passes ``progress`` and ``context`` by name."""

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


def build_parser() -> argparse.ArgumentParser:
    """The ``python main.py`` command line; each subcommand's options live beside its code."""
    import demo
    from nodes import compare_models, data_split

    parser = argparse.ArgumentParser(prog="python main.py", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module, help_text in (
        ("demo", demo, "run an end-to-end active-learning round on the embedded local platform"),
        ("split", data_split, "split a whole dataset into subsets (batch Model Data Split)"),
        ("compare", compare_models, "compare two models from a terminal and write a report"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_cli_arguments(sub)
        sub.set_defaults(run=module.run_cli)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
