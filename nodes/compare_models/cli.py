"""Compare Models from a terminal: ``python main.py compare --previous ID --new ID [--dataset ID]``.

Writes ``report.md`` and ``pr_curves.png`` to ``--out``; read only unless ``--store``.
Every option is checked before the first request (ids are plain ids, ``--config`` a regular JSON
file within its size limit holding a valid compare config, ``--out`` a folder that is created and
proved writable with a probe file), then the entities are fetched and checked to belong to one
project; a bad option, or a platform that is not logged in or not reachable, exits with code 2
and one line naming it, and nothing is written (a folder made for ``--out`` is removed again).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from nodes.common.cli import (
    PlatformUnavailable,
    check_platform,
    platform_failure,
    prepare_out_dir,
    read_config_text,
)
from nodes.common.limits import MAX_BYTES, loads_json_text, shorten
from nodes.compare_models.config import CompareConfig
from nodes.compare_models.node import _check_inputs, compare, store_report
from nodes.compare_models.report import plot_pr_curves

#: What a platform id looks like (Dataloop ids are 24 hex digits): no slash, dot, space, query
#: or control character can reach a request path.
PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: Project references (names) may hold spaces and punctuation, never control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REPORT_FILES = ("report.md", "pr_curves.png")


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
    parser.add_argument(
        "--project",
        metavar="NAME_OR_ID",
        help="project both models and the dataset belong to (default: the new model's project, checked "
        "against --dataset only)",
    )
    parser.add_argument("--config", metavar="FILE", help="compare_config JSON file (default: the packaged one)")
    parser.add_argument(
        "--out",
        metavar="DIR",
        default="compare_report",
        help="output folder, created if missing; report.md and pr_curves.png in it are replaced (default: %(default)s)",
    )
    parser.add_argument(
        "--store",
        action="store_true",
        help="also store the report on the new model (metadata.user.activeLearning.comparison)",
    )


def check_plain_id(option: str, value: Any, kind: str) -> str:
    """``value`` if it is a plain platform id, else a ``ValueError`` naming ``option``.

    Examples
    --------
    >>> check_plain_id("--new", "65f1c0ffee00000000000001", "model")
    '65f1c0ffee00000000000001'
    >>> check_plain_id("--new", "../models/x", "model")
    Traceback (most recent call last):
    ...
    ValueError: --new: '../models/x' is not a model id (letters, digits, '-' and '_' only, at most 128); copy the id from the platform, e.g. --new 65f1c0ffee00000000000001
    """
    if not isinstance(value, str) or not PLAIN_ID.fullmatch(value):
        raise ValueError(
            f"{option}: {shorten(value, 80)} is not a {kind} id (letters, digits, '-' and '_' only, at most 128); "
            f"copy the id from the platform, e.g. {option} 65f1c0ffee00000000000001"
        )
    return value


def check_out_folder(value: str) -> Path:
    """``--out`` as a name that can be a folder for the report files (no file system write).

    An existing folder is used (``report.md`` and ``pr_curves.png`` in it are replaced); an
    existing file, a path under a file or a report file name taken by a folder is a ``ValueError``
    naming ``--out``. Nothing is created here; whether the place is writable is proved by writing
    (``nodes.common.cli.prepare_out_dir``), not by permission bits.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> check_out_folder(folder + "/report").name
    'report'
    >>> check_out_folder(__file__)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --out: ... is an existing file, not a folder; give a new or existing folder, e.g. --out compare_report
    """
    fix = "give a new or existing folder, e.g. --out compare_report"
    if not value or _CONTROL.search(value):
        raise ValueError(f"--out: {shorten(value, 120)} is not a usable folder name; {fix}")
    out = Path(value)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {shorten(value, 120)} is an existing file, not a folder; {fix}")
    for name in REPORT_FILES:
        if (out / name).is_dir():
            raise ValueError(f"--out: {shorten(str(out / name), 120)} is a folder, so {name} cannot be written; {fix}")
    existing = out
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ValueError(
            f"--out: {shorten(str(existing), 120)} is a file, so {shorten(value, 120)} cannot be created; {fix}"
        )
    return out


def read_config_file(path: str | None) -> CompareConfig:
    """The ``--config`` file parsed and validated (the packaged default when ``path`` is None).

    Only a regular file is read, and at most twice ``MAX_BYTES`` of it
    (``nodes.common.cli.read_config_text``: ``/dev/zero``, a FIFO or a folder is refused unread).
    Every problem is a ``ValueError`` naming ``--config`` (unreadable, not UTF-8, not JSON,
    nested too deep to parse) or the field of ``compare_config`` that is wrong.
    """
    if path is None:
        return CompareConfig.from_json(None)
    fix = "give the path of a compare_config JSON file, e.g. --config pipeline_configs/compare_configurations.json"
    text = read_config_text(path, "--config", max_bytes=2 * MAX_BYTES, fix=fix)
    # the file's size is bounded above (whitespace allowed); the parsed value is bounded by from_json
    raw = loads_json_text(
        text,
        f"--config {shorten(path, 120)}",
        hint="fix the file (see pipeline_configs/compare_configurations.json)",
        max_bytes=None,
    )
    return CompareConfig.from_json(raw)


def _get_entity(getter: Any, option: str, **ids: str) -> Any:
    """EDGE. Get one entity by id; an unknown id is a ``ValueError`` naming the CLI option."""
    import dtlpy as dl

    try:
        return getter(**ids)
    except (dl.exceptions.NotFound, dl.exceptions.BadRequest, dl.exceptions.Forbidden):
        raise ValueError(
            f"{option}: {shorten(next(iter(ids.values())), 80)} not found; check the id "
            "(dl.models.list() / project.datasets.list())"
        ) from None


def _get_project(reference: str) -> Any:
    """EDGE. The project named (or with the id) ``reference``; a ``ValueError`` naming ``--project``."""
    import dtlpy as dl

    missing = (dl.exceptions.NotFound, dl.exceptions.BadRequest, dl.exceptions.Forbidden)
    fix = "check the name (dl.projects.list()) or leave --project out to use the new model's project"
    if not reference or _CONTROL.search(reference) or len(reference) > 256:
        raise ValueError(f"--project: {shorten(reference, 80)} is not a project name or id; {fix}")
    try:
        return dl.projects.get(project_name=reference)
    except missing:
        pass
    if PLAIN_ID.fullmatch(reference):
        try:
            return dl.projects.get(project_id=reference)
        except missing:
            pass
    raise ValueError(f"--project: {shorten(reference, 80)} is not the name or id of a project you can access; {fix}")


def check_same_project(project_id: str, project_option: str, previous: Any, new: Any, dataset: Any) -> None:
    """Refuse a model or dataset of another project than ``project_id`` (``ValueError`` naming the option).

    ``previous`` and ``new`` are checked only when ``project_option`` is ``"--project"`` (an
    explicit project); the dataset always.

    Examples
    --------
    >>> from types import SimpleNamespace as E
    >>> check_same_project("p1", "--project", E(project_id="p1"), E(project_id="p1"), E(projects=["p2"], id="d"))
    Traceback (most recent call last):
    ...
    ValueError: --dataset: 'd' belongs to project(s) ['p2'], not to --project 'p1'; give a dataset of that project, or the right --project
    """
    if project_option == "--project":
        for option, model in (("--previous", previous), ("--new", new)):
            if getattr(model, "project_id", None) != project_id:
                raise ValueError(
                    f"{option}: model {shorten(model.id, 60)} belongs to project {shorten(model.project_id, 60)}, "
                    f"not to --project {shorten(project_id, 60)}; compare models of one project, or give its --project"
                )
    if dataset is not None:
        projects = list(getattr(dataset, "projects", None) or [])
        if project_id not in projects:
            where = "--project" if project_option == "--project" else "the new model's project"
            raise ValueError(
                f"--dataset: {shorten(dataset.id, 60)} belongs to project(s) {shorten(projects, 120)}, "
                f"not to {where} {shorten(project_id, 60)}; give a dataset of that project, or the right --project"
            )


def _resolve(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """EDGE (reads only). The models and the dataset of the options, checked to share a project."""
    import dtlpy as dl

    project = _get_project(args.project) if args.project is not None else None
    previous_model = _get_entity(dl.models.get, "--previous", model_id=args.previous)
    new_model = _get_entity(dl.models.get, "--new", model_id=args.new)
    dataset = _get_entity(dl.datasets.get, "--dataset", dataset_id=args.dataset) if args.dataset else None
    if project is not None:
        check_same_project(project.id, "--project", previous_model, new_model, dataset)
    else:
        check_same_project(new_model.project_id, "--new", previous_model, new_model, dataset)
    return previous_model, new_model, dataset


def run_cli(args: argparse.Namespace) -> int:
    """Run the comparison from a terminal; write ``report.md`` and ``pr_curves.png`` to ``--out``.

    Read only unless ``--store``. Exit code 0 (the decision is in the report), 2 on bad input
    (the message names the option or the config field) or when the platform is not logged in or
    not reachable (one line saying how to log in or start the local platform); then nothing is
    written and a folder made for ``--out`` is removed again.

    Examples
    --------
    >>> # python main.py compare --previous <id> --new <id> --dataset <id> --out report/
    """
    out = None
    try:
        check_plain_id("--previous", args.previous, "model")
        check_plain_id("--new", args.new, "model")
        if args.dataset is not None:
            check_plain_id("--dataset", args.dataset, "dataset")
        check_out_folder(args.out)
        config = read_config_file(args.config)
        out = prepare_out_dir(args.out, "--out", "--out compare_report", REPORT_FILES)
        check_platform()
        previous_model, new_model, dataset = _resolve(args)
        _check_inputs(previous_model, new_model, config, dataset)
        comparison = compare(previous_model, new_model, config, dataset)
    except (ValueError, PlatformUnavailable) as error:
        return _refuse(str(error), out)
    except Exception as error:
        message = platform_failure(error)
        if message is None:
            raise
        return _refuse(message, out)
    report = comparison.report
    (out.path / "report.md").write_text(report.markdown(previous_model.name, new_model.name), encoding="utf-8")
    plot_pr_curves(comparison.evaluation, out.path / "pr_curves.png", previous_model.name, new_model.name)
    if args.store:
        store_report(new_model, report, tag_decision=False)
    print(report.table())
    print(f"wrote {out.path / 'report.md'} and {out.path / 'pr_curves.png'}")
    return 0


def _refuse(message: str, out: Any) -> int:
    """Print ``error: <message>`` on one line to stderr, remove a folder made for ``--out``; exit code 2."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    if out is not None:
        out.discard_if_unused()
    return 2
