"""``python main.py split``: the batch Model Data Split from a terminal (options, dataset lookup, summary table).

Every error names the option the user typed (``--seed``, ``--subsets``, ``--group-by``, ...) and
exits with code 2 before any write; the options are checked before the first request. Not logged
in, or a platform that cannot be reached, is one line saying how to log in or start the local
platform (exit code 2, no traceback; :mod:`nodes.common.cli`).
"""

from __future__ import annotations

import re
from typing import Any

from nodes.common.cli import check_platform, platform_failure
from nodes.common.limits import shorten
from nodes.data_split.batch import check_batch_options, split_dataset
from nodes.data_split.config import SplitConfig

#: The largest ``--seed`` (the Data Split config's bound: an unsigned 32-bit integer).
MAX_SEED = 4_294_967_295
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Option names of ``split_dataset``'s parameters, as the user typed them.
_OPTIONS = {"stratify_by": "--stratify-by", "group_by": "--group-by", "seed": "--seed"}
#: JSON-config examples in messages of ``SplitConfig``, in the command line's own words.
_CLI_EXAMPLES = (
    (re.compile(r'like \[\{"name".*?\}\]'), "like --subsets train=80,validation=10,test=10"),
    (re.compile(r'e\.g\. "distribution": (\d+)'), r"e.g. train=\1"),
    (re.compile(r'e\.g\. "seed": (\d+)'), r"e.g. --seed \1"),
    (re.compile(r"--subsets\.seed\b"), "--seed"),
)


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
    parser.add_argument("--seed", default="0", help=f"assignment seed, 0 to {MAX_SEED} (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="decide and print the summary, write nothing")
    parser.add_argument("--reassign", action="store_true", help="ignore existing subset tags")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_seed(text: Any) -> int:
    """``--seed`` as an integer from 0 to :data:`MAX_SEED` (decimal digits only), else a ``ValueError``.

    Examples
    --------
    >>> parse_seed("42")
    42
    >>> parse_seed("1e3")
    Traceback (most recent call last):
    ...
    ValueError: --seed: '1e3' is not a whole number in decimal digits; use an integer from 0 to 4294967295 in decimal digits, e.g. --seed 0
    """
    fix = f"use an integer from 0 to {MAX_SEED} in decimal digits, e.g. --seed 0"
    digits = text.strip() if isinstance(text, str) else None
    if digits is None or not re.fullmatch(r"[0-9]{1,10}", digits) or int(digits) > MAX_SEED:
        if digits is not None and re.fullmatch(r"-[0-9]+", digits):
            problem = "is negative"
        elif digits is not None and re.fullmatch(r"[0-9]+", digits):
            problem = f"is above {MAX_SEED}"
        else:
            problem = "is not a whole number in decimal digits"
        raise ValueError(f"--seed: {shorten(text, 80)} {problem}; {fix}")
    return int(digits)


def in_option_terms(message: str) -> str:
    """A message of the config or batch layer reworded for the command line.

    Parameter names become the options the user typed and JSON examples become command-line
    ones; a message that does not already name an option gets ``(option ...)`` appended.

    Examples
    --------
    >>> in_option_terms("group_by: 'a$' is not a dotted field name; use e.g. metadata.user.patient_id")
    "group_by: 'a$' is not a dotted field name; use e.g. metadata.user.patient_id (option --group-by)"
    >>> in_option_terms('--subsets.seed: -1 is below 0; e.g. "seed": 0')
    '--seed: -1 is below 0; e.g. --seed 0'
    """
    for pattern, replacement in _CLI_EXAMPLES:
        message = pattern.sub(replacement, message)
    named = [flag for name, flag in _OPTIONS.items() if re.match(rf"(\w+/)*{name}\b", message)]
    if named and not message.startswith("--"):
        message += f" (option {'/'.join(named)})"
    return message


def _check_reference(option: str, value: Any) -> None:
    """A project or dataset reference the platform can look up (no control characters, not empty)."""
    if not isinstance(value, str) or not value.strip() or _CONTROL.search(value) or len(value) > 256:
        raise ValueError(
            f"{option}: {shorten(value, 80)} is not a name or id (empty, too long, or holds control characters); "
            f"give the name shown on the platform, e.g. {option} my-{option.strip('-')}"
        )


def _get_by_name_or_id(getter: Any, kind: str, ref: str, not_found: ValueError) -> Any:
    """Edge: ``getter(<kind>_name=ref)``, else ``getter(<kind>_id=ref)``; ``not_found`` when neither finds it."""
    import dtlpy as dl

    for key in (f"{kind}_name", f"{kind}_id"):
        try:
            return getter(**{key: ref})
        except (dl.exceptions.NotFound, dl.exceptions.BadRequest, dl.exceptions.Forbidden):
            continue
    raise not_found from None


def _get_dataset(project_ref: str, dataset_ref: str) -> Any:
    """Edge: the dataset named (or with the id) ``dataset_ref`` in project ``project_ref``.

    Raises ``ValueError`` naming ``--project`` / ``--dataset`` when either cannot be found.
    """
    import dtlpy as dl

    project = _get_by_name_or_id(
        dl.projects.get,
        "project",
        project_ref,
        ValueError(
            f"--project: {shorten(project_ref, 80)} is not the name or id of a project you can access; "
            "check the name (dl.projects.list()) or run `dl.login()` for the right environment"
        ),
    )
    not_here = ValueError(
        f"--dataset: {shorten(dataset_ref, 80)} is not the name or id of a dataset in project "
        f"{shorten(project.name, 80)}; check the name (project.datasets.list()) or give the dataset's --project"
    )
    dataset = _get_by_name_or_id(project.datasets.get, "dataset", dataset_ref, not_here)
    # dtlpy gets a dataset by id whatever its project: a dataset of another project is refused here
    if project.id not in list(getattr(dataset, "projects", None) or []):
        raise not_here
    return dataset


def run_cli(args: Any) -> int:
    """Edge: ``python main.py split ...``; prints the summary table. Returns the exit code.

    0 on success, 2 on a bad option, when not logged in or when the platform cannot be reached
    (one line on stderr, nothing written). The dtlpy environment that is currently set is used
    (the user's login).

    Examples
    --------
    >>> # python main.py split --project P --dataset D --subsets train=80,validation=10,test=10 --dry-run
    """
    import sys

    try:
        seed = parse_seed(args.seed)
        config = SplitConfig.from_subsets_arg(args.subsets, seed=seed)
        check_batch_options(args.stratify_by, args.group_by)
        _check_reference("--project", args.project)
        _check_reference("--dataset", args.dataset)
    except ValueError as exc:
        print(f"error: {in_option_terms(str(exc))}", file=sys.stderr)
        return 2
    try:
        check_platform()
        dataset = _get_dataset(args.project, args.dataset)
        summary = split_dataset(
            dataset,
            config,
            stratify_by=args.stratify_by,
            group_by=args.group_by,
            seed=seed,
            dry_run=args.dry_run,
            reassign=args.reassign,
            show_progress=False if args.no_progress else None,
        )
    except ValueError as exc:
        print(f"error: {in_option_terms(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - only "not logged in" / "unreachable" become one line
        message = platform_failure(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(summary.table())
    return 0
