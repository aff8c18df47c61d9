"""Compare Models from a terminal: ``python main.py compare --previous ID --new ID [--dataset ID]``.

Writes ``report.md`` and ``pr_curves.png`` to ``--out``; read only unless ``--store``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nodes.compare_models.config import CompareConfig
from nodes.compare_models.node import _check_inputs, compare, store_report
from nodes.compare_models.report import plot_pr_curves


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python main.py compare``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_cli_arguments(parser)
    >>> parser.parse_args(["--previous", "a", "--new", "b"]).out
    'compare_report'
    """
    parser.add_argument("--previous", required=True, metavar="ID", help="id of the previous (current) model")
    parser.add_argument("--new", required=True, metavar="ID", help="id of the newly trained model")
    parser.add_argument(
        "--dataset", metavar="ID", help="id of the dataset both models were evaluated on (needed for precision_recall)"
    )
    parser.add_argument("--config", metavar="FILE", help="compare_config JSON file (default: the packaged one)")
    parser.add_argument("--out", metavar="DIR", default="compare_report", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--store",
        action="store_true",
        help="also store the report on the new model (metadata.user.activeLearning.comparison)",
    )


def _get_entity(getter: Any, option: str, **ids: str) -> Any:
    """EDGE. Get one entity by id; an unknown id is a ``ValueError`` naming the CLI option."""
    import dtlpy as dl

    try:
        return getter(**ids)
    except dl.exceptions.NotFound:
        raise ValueError(f"{option}: {next(iter(ids.values()))!r} not found; check the id") from None


def run_cli(args: argparse.Namespace) -> int:
    """Run the comparison from a terminal; write ``report.md`` and ``pr_curves.png`` to ``--out``.

    Read only unless ``--store``. Exit code 0 (the decision is in the report), 2 on bad input.

    Examples
    --------
    >>> # python main.py compare --previous <id> --new <id> --dataset <id> --out report/
    """
    try:
        raw = None
        if args.config:
            with open(args.config, encoding="utf-8") as f:
                text = f.read()
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"--config {args.config}: not valid JSON ({error}); fix the file") from None
        config = CompareConfig.from_json(raw)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import dtlpy as dl

    try:
        previous_model = _get_entity(dl.models.get, "--previous", model_id=args.previous)
        new_model = _get_entity(dl.models.get, "--new", model_id=args.new)
        dataset = _get_entity(dl.datasets.get, "--dataset", dataset_id=args.dataset) if args.dataset else None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        _check_inputs(previous_model, new_model, config, dataset)
        comparison = compare(previous_model, new_model, config, dataset)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = comparison.report
    (out / "report.md").write_text(report.markdown(previous_model.name, new_model.name), encoding="utf-8")
    plot_pr_curves(comparison.evaluation, out / "pr_curves.png", previous_model.name, new_model.name)
    if args.store:
        store_report(new_model, report, tag_decision=False)
    print(report.table())
    print(f"wrote {out / 'report.md'} and {out / 'pr_curves.png'}")
    return 0
