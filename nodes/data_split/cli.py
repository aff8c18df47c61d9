"""``python main.py split``: the batch Model Data Split from a terminal (options, dataset lookup, summary table)."""

from __future__ import annotations

from typing import Any

from nodes.data_split.batch import check_batch_options, split_dataset
from nodes.data_split.config import SplitConfig


def add_cli_arguments(parser: Any) -> None:
    """Options of ``python main.py split``.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_cli_arguments(parser)
    >>> parser.parse_args(["--project", "p", "--dataset", "d", "--dry-run"]).subsets
    'train=80,validation=10,test=10'
    """
    parser.add_argument("--project", required=True, help="project name (or id)")
    parser.add_argument("--dataset", required=True, help="dataset name (or id)")
    parser.add_argument(
        "--subsets", default="train=80,validation=10,test=10", help="name=percent,... (default: %(default)s)"
    )
    parser.add_argument("--stratify-by", choices=["label"], default=None, help="balance every label over the subsets")
    parser.add_argument(
        "--group-by", default=None, metavar="FIELD", help="e.g. metadata.user.patient_id: keep equal values together"
    )
    parser.add_argument("--seed", type=int, default=0, help="assignment seed (default: 0)")
    parser.add_argument("--dry-run", action="store_true", help="decide and print the summary, write nothing")
    parser.add_argument("--reassign", action="store_true", help="ignore existing subset tags")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _get_dataset(project_ref: str, dataset_ref: str) -> Any:
    """Edge: the dataset named (or with the id) ``dataset_ref`` in project ``project_ref``.

    Raises ``ValueError`` naming ``--project`` / ``--dataset`` when either cannot be found.
    """
    import dtlpy as dl

    missing = (dl.exceptions.NotFound, dl.exceptions.BadRequest, dl.exceptions.Forbidden)
    try:
        project = dl.projects.get(project_name=project_ref)
    except missing:
        try:
            project = dl.projects.get(project_id=project_ref)
        except missing:
            raise ValueError(
                f"--project: {project_ref!r} is not the name or id of a project you can access; "
                "check the name (dl.projects.list()) or run `dl.login()` for the right environment"
            ) from None
    try:
        return project.datasets.get(dataset_name=dataset_ref)
    except missing:
        try:
            return project.datasets.get(dataset_id=dataset_ref)
        except missing:
            raise ValueError(
                f"--dataset: {dataset_ref!r} is not the name or id of a dataset in project {project.name!r}; "
                "check the name (project.datasets.list())"
            ) from None


def run_cli(args: Any) -> int:
    """Edge: ``python main.py split ...``; prints the summary table. Returns the exit code.

    0 on success, 2 on a bad option (the message goes to stderr, nothing is written). The dtlpy
    environment that is currently set is used (the user's login).

    Examples
    --------
    >>> # python main.py split --project P --dataset D --subsets train=80,validation=10,test=10 --dry-run
    """
    import sys

    try:
        if args.seed < 0:
            raise ValueError(f"--seed: {args.seed} is negative; use an integer >= 0, e.g. --seed 0")
        config = SplitConfig.from_subsets_arg(args.subsets, seed=args.seed)
        check_batch_options(args.stratify_by, args.group_by)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        dataset = _get_dataset(args.project, args.dataset)
        summary = split_dataset(
            dataset,
            config,
            stratify_by=args.stratify_by,
            group_by=args.group_by,
            seed=args.seed,
            dry_run=args.dry_run,
            reassign=args.reassign,
            show_progress=False if args.no_progress else None,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.table())
    return 0
