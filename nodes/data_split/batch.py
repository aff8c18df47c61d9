"""Model Data Split over a whole dataset (``python main.py split``): decide, plan bulk writes, summarise.

The pure part (:func:`decide_batch`, :func:`plan_updates`, :func:`summarize`) uses the
assignments of :mod:`nodes.data_split.assign`. Each batch run marks the items it tags with
:func:`run_marker` of its :func:`batch_fingerprint`, so a rerun after an interruption ends where
an uninterrupted run ends. :func:`split_dataset` is the dtlpy edge: paged listing, one bulk
update per subset per 1,000 items.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nodes.common.limits import shorten
from nodes.common.paging import json_pages
from nodes.data_split.assign import (
    _group_key_text,
    _targets,
    assign_exact,
    assign_grouped,
    assign_stratified,
    existing_subset,
    membership_tags,
    tags_after_assignment,
    tags_changed,
)
from nodes.data_split.config import BULK_CHUNK, RUN_MARK_PATH, SplitConfig

logger = logging.getLogger(__name__)

_GROUP_BY_RE = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")  # whole string: fullmatch


def lookup_field(document: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` (e.g. ``metadata.user.patient``) in a JSON document, or ``None``.

    Examples
    --------
    >>> lookup_field({"metadata": {"user": {"patient": "p1"}}}, "metadata.user.patient")
    'p1'
    """
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, (list, dict)):
        return _group_key_text(node)
    return node


def plan_updates(
    assignments: Mapping[str, str],
    current_tags: Mapping[str, Any],
    config: SplitConfig,
    chunk: int = BULK_CHUNK,
    *,
    sticky: Collection[str] = (),
    fingerprint: str | None = None,
) -> list[tuple[str, dict, list[str], str | None]]:
    """Group the needed tag changes into bulk updates of at most ``chunk`` items.

    Items whose tags already say their subset (and nothing else configured) need no write.
    With a ``fingerprint`` (see :func:`batch_fingerprint`), every written item that is not
    ``sticky`` also gets the run marker ``metadata.user.activeLearning.split =``
    :func:`run_marker` ``(fingerprint, subset)`` in the same request, so that a rerun of the same
    split after an interruption can tell the tags this split wrote from tags that were there before.

    Returns
    -------
    list of (subset, tags update, item ids, marker)
        ``tags update`` is the ``metadata.system.tags`` patch: ``{subset: True}`` plus
        ``{other: None}`` for other configured membership tags to remove; ``marker`` is the run
        marker to write on these items, or ``None``.

    Examples
    --------
    >>> plan_updates({"a": "train", "b": "train"}, {"a": {"train": True}}, SplitConfig.default())
    [('train', {'train': True}, ['b'], None)]
    >>> plan_updates({"b": "test"}, {}, SplitConfig.default(), fingerprint="f00d")
    [('test', {'test': True}, ['b'], 'f00d:test')]
    """
    sticky = set(sticky)
    batches: dict[tuple[str, tuple[str, ...], bool], list[str]] = defaultdict(list)
    for item_id, subset in assignments.items():
        tags = current_tags.get(item_id)
        new = tags_after_assignment(tags, subset, config)
        if not tags_changed(tags, new):  # JSON comparison: {"train": 1} is written as true
            continue
        removed = tuple(n for n in membership_tags(tags, config) if n != subset)
        marked = fingerprint is not None and item_id not in sticky
        batches[(subset, removed, marked)].append(item_id)
    plan = []
    rank = {n: k for k, n in enumerate(config.subset_names)}
    for (subset, removed, marked), ids in sorted(batches.items(), key=lambda kv: (rank[kv[0][0]], kv[0][1:])):
        patch = {subset: True} | {name: None for name in removed}
        marker = run_marker(fingerprint, subset) if marked else None
        ids = sorted(ids)
        for start in range(0, len(ids), chunk):
            plan.append((subset, dict(patch), ids[start : start + chunk], marker))
    return plan


@dataclass(frozen=True)
class SplitSummary:
    """What a batch split decided and wrote.

    Attributes
    ----------
    assignments : dict
        ``{item id: subset}`` for every listed item.
    per_subset : dict
        ``{subset: item count}`` in configuration order.
    per_label : dict
        ``{label: {subset: item count}}`` (items counted once per label they carry).
    targets : dict
        ``{subset: target item count}`` (largest remainder).
    sticky : int
        Items that kept the subset tag they already had.
    changed : int
        Items whose tags were (or, in a dry run, would be) written.
    write_requests : int
        Bulk update requests sent (in a dry run: that a real run would send; the log line and the
        table give this one number).
    dry_run : bool
    notes : tuple of str
        Extra lines for the printed table (e.g. items without the group-by field).
    fingerprint : str
        The run's :func:`batch_fingerprint` (empty when not computed).

    Examples
    --------
    >>> s = SplitSummary({"a": "train"}, {"train": 1}, {}, {"train": 1}, 0, 1, 1, False)
    >>> "train" in s.table()
    True
    """

    assignments: dict[str, str]
    per_subset: dict[str, int]
    per_label: dict[str, dict[str, int]]
    targets: dict[str, int]
    sticky: int
    changed: int
    write_requests: int
    dry_run: bool
    notes: tuple[str, ...] = field(default=())
    fingerprint: str = ""

    def table(self) -> str:
        """A plain-text table: items per subset (and target), then items per label and subset."""
        subsets = list(self.per_subset)
        total = sum(self.per_subset.values())
        first = max([len("label"), *(len(lab) for lab in self.per_label)], default=5)
        width = max(8, *(len(s) for s in subsets))
        header = f"{'':<{first}}  " + "  ".join(f"{s:>{width}}" for s in subsets) + f"  {'total':>{width}}"
        lines = [header]
        lines.append(
            f"{'items':<{first}}  "
            + "  ".join(f"{self.per_subset[s]:>{width}}" for s in subsets)
            + f"  {total:>{width}}"
        )
        lines.append(
            f"{'target':<{first}}  "
            + "  ".join(f"{self.targets.get(s, 0):>{width}}" for s in subsets)
            + f"  {sum(self.targets.values()):>{width}}"
        )
        for lab in sorted(self.per_label):
            row = self.per_label[lab]
            lines.append(
                f"{lab:<{first}}  "
                + "  ".join(f"{row.get(s, 0):>{width}}" for s in subsets)
                + f"  {sum(row.values()):>{width}}"
            )
        verb = "would write" if self.dry_run else "wrote"
        lines.append(
            f"{total} items, {self.sticky} kept their subset, {verb} tags of {self.changed} "
            f"in {self.write_requests} bulk requests" + (" (dry run: nothing written)" if self.dry_run else "")
        )
        lines.extend(self.notes)
        return "\n".join(lines)


def summarize(
    assignments: Mapping[str, str],
    config: SplitConfig,
    item_labels: Mapping[str, Collection[str]] | None = None,
) -> tuple[dict[str, int], dict[str, dict[str, int]], dict[str, int]]:
    """Counts per subset, per label and subset, and the targets (pure).

    Examples
    --------
    >>> summarize({"a": "train", "b": "test"}, SplitConfig.default(), {"a": ["cat"]})[1]
    {'cat': {'train': 1}}
    """
    counts = Counter(assignments.values())
    per_subset = {n: counts.get(n, 0) for n in config.subset_names}
    per_label: dict[str, dict[str, int]] = {}
    for item_id, subset in assignments.items():
        for lab in sorted(set((item_labels or {}).get(item_id, ()))):
            row = per_label.setdefault(lab, {})
            row[subset] = row.get(subset, 0) + 1
    return per_subset, per_label, _targets(len(assignments), config.shares)


def batch_fingerprint(
    item_ids: Iterable[str],
    config: SplitConfig,
    *,
    item_labels: Mapping[str, Collection[str]] | None = None,
    item_groups: Mapping[str, Hashable | None] | None = None,
    seed: int = 0,
    reassign: bool = False,
) -> str:
    """A short stable digest of everything a batch split decides from, except the current tags.

    Subsets and shares, seed, mode (exact / stratified / grouped), ``reassign``, and every item id
    with its labels (stratified) or group value (grouped). Two runs with the same fingerprint
    over the same sticky items make the same decision, so tags written by a run with this
    fingerprint can be re-decided by a rerun (see :func:`decide_batch`). If anything changed
    (an item added, a label edited, another seed), the fingerprint changes and those tags are
    sticky like any other.

    Examples
    --------
    >>> a = batch_fingerprint(["x", "y"], SplitConfig.default())
    >>> a == batch_fingerprint(["y", "x"], SplitConfig.default()), a == batch_fingerprint(["x"], SplitConfig.default())
    (True, False)
    >>> len(a)
    16
    """
    mode = "label" if item_labels is not None else "group" if item_groups is not None else "exact"
    head = {
        "v": 1,
        "groups": [[g.name, g.share] for g in config.groups],
        "seed": seed,
        "mode": mode,
        "reassign": bool(reassign),
    }
    ids = sorted(item_ids)
    if item_labels is not None:
        body: list[Any] = [[i, sorted(set(item_labels.get(i, ())))] for i in ids]
    elif item_groups is not None:
        body = [[i, None if (v := item_groups.get(i)) is None else _group_key_text(v)] for i in ids]
    else:
        body = ids
    digest = hashlib.sha256(json.dumps([head, body], sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()[:16]


def run_marker(fingerprint: str, subset: str) -> str:
    """The value a batch run writes in ``metadata.user.activeLearning.split`` next to ``subset``'s tag.

    It names the subset too, so an item whose tag was changed by hand after the run no longer
    carries its run's marker for the new tag and is sticky.

    Examples
    --------
    >>> run_marker("0123abcd0123abcd", "train")
    '0123abcd0123abcd:train'
    """
    return f"{fingerprint}:{subset}"


def run_mark_of(document: Mapping[str, Any]) -> Any:
    """The run marker of an item JSON document (``metadata.user.activeLearning.split``), or ``None``.

    Examples
    --------
    >>> run_mark_of({"metadata": {"user": {"activeLearning": {"split": "f:train"}}}})
    'f:train'
    >>> run_mark_of({"metadata": {"user": None}}) is None
    True
    """
    node: Any = (document.get("metadata") or {}).get("user")
    for part in RUN_MARK_PATH:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def decide_batch(
    item_tags: Mapping[str, Any],
    config: SplitConfig,
    *,
    item_labels: Mapping[str, Collection[str]] | None = None,
    item_groups: Mapping[str, Hashable | None] | None = None,
    seed: int = 0,
    reassign: bool = False,
    item_marks: Mapping[str, Any] | None = None,
    fingerprint: str | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Choose every item's subset (pure part of :func:`split_dataset`).

    Rerun stability: an item whose subset tag carries this very run's marker
    (``item_marks[id] == run_marker(fingerprint, subset)``) was tagged by an earlier, possibly
    interrupted, run of the same split; it is re-decided (not sticky), so the deterministic
    solve over the same sticky items gives exactly what one uninterrupted run gives. Every
    other tagged item is sticky.

    Parameters
    ----------
    item_tags : mapping
        ``{item id: metadata.system.tags}`` of the items to split.
    config : SplitConfig
    item_labels, item_groups : mapping, optional
        Given for stratification by label or grouping (at most one of them).
    seed : int
    reassign : bool
        Ignore existing subset tags.
    item_marks : mapping, optional
        ``{item id: run marker}`` (:func:`run_mark_of` of each item).
    fingerprint : str, optional
        This run's :func:`batch_fingerprint`; computed when ``item_marks`` is given without it.

    Returns
    -------
    (assignments, sticky)
        ``{item id: subset}`` and the ``{item id: subset}`` of items that kept theirs.

    Examples
    --------
    >>> a, s = decide_batch({"x": {"test": True}, "y": {}}, SplitConfig.default())
    >>> a["x"], s
    ('test', {'x': 'test'})
    >>> fp = batch_fingerprint(["x", "y"], SplitConfig.default())
    >>> decide_batch({"x": {"test": True}, "y": {}}, SplitConfig.default(),
    ...              item_marks={"x": run_marker(fp, "test")})[1]
    {}
    """
    if item_labels is not None and item_groups is not None:
        raise ValueError("stratify_by/group_by: use one of them, not both")
    if item_marks is not None and fingerprint is None:
        fingerprint = batch_fingerprint(
            item_tags, config, item_labels=item_labels, item_groups=item_groups, seed=seed, reassign=reassign
        )
    sticky = {}
    rerun = 0
    if not reassign:
        for item_id, tags in item_tags.items():
            subset = existing_subset(tags, config)
            if subset is None:
                continue
            if item_marks is not None and item_marks.get(item_id) == run_marker(fingerprint, subset):
                rerun += 1
                continue
            sticky[item_id] = subset
    if rerun:
        logger.info(
            "%d items were tagged by an earlier run of this same split (%s): re-deciding them", rerun, fingerprint
        )
    shares = config.shares
    if item_labels is not None:
        labels = {i: item_labels.get(i, ()) for i in item_tags}
        assignments = assign_stratified(labels, shares, seed=seed, sticky=sticky)
    elif item_groups is not None:
        groups = {i: item_groups.get(i) for i in item_tags}
        assignments = assign_grouped(groups, shares, seed=seed, sticky=sticky)
    else:
        assignments = assign_exact(list(item_tags), shares, seed=seed, sticky=sticky)
    return assignments, sticky


def _item_pages(dataset: Any, filters: Any) -> Iterable[list[dict]]:
    """Edge: the JSON of the items to split, page by page (default: all files)."""
    import dtlpy as dl

    yield from json_pages(dataset.items, filters if filters is not None else dl.Filters(), page_size=BULK_CHUNK)


def _dataset_labels(dataset: Any, wanted: set[str]) -> dict[str, list[str]]:
    """Edge: ``{item id: labels}`` from one paged dataset-level annotation listing."""
    import dtlpy as dl

    labels: dict[str, set[str]] = defaultdict(set)
    for page in json_pages(dataset.annotations, dl.Filters(resource=dl.FiltersResource.ANNOTATION)):
        for annotation in page:
            item_id, label = annotation.get("itemId"), annotation.get("label")
            if item_id in wanted and label:
                labels[item_id].add(label)
    return {i: sorted(v) for i, v in labels.items()}


#: What a batch split's bulk write changes on an item: the subset tags, the run marker and the
#: update stamps the platform sets on every write. Grouping by any of these (or by a field that
#: holds one, such as ``metadata.user``) would change the groups between a run and its rerun.
WRITTEN_FIELDS = ("metadata.system.tags", "metadata.user." + ".".join(RUN_MARK_PATH[:1]), "updatedAt", "updatedBy")


def _written_under(group_by: str) -> str | None:
    """The first of :data:`WRITTEN_FIELDS` that ``group_by`` is, holds, or lies inside; else ``None``."""
    for written in WRITTEN_FIELDS:
        if (group_by + ".").startswith(written + ".") or (written + ".").startswith(group_by + "."):
            return written
    return None


def check_batch_options(stratify_by: str | None, group_by: str | None, bulk_size: int = BULK_CHUNK) -> None:
    """Validate the batch options of :func:`split_dataset` (raises ``ValueError`` naming the option).

    Examples
    --------
    >>> check_batch_options("label", None)
    >>> check_batch_options(None, "metadata.user.$where")
    Traceback (most recent call last):
    ...
    ValueError: group_by: 'metadata.user.$where' is not a dotted field name; use e.g. metadata.user.patient_id
    """
    if stratify_by not in (None, "label"):
        raise ValueError(f"stratify_by: {shorten(stratify_by, 120)} is not supported; use 'label' or leave it out")
    if group_by is not None and not _GROUP_BY_RE.fullmatch(str(group_by)):
        raise ValueError(
            f"group_by: {shorten(group_by, 120)} is not a dotted field name; use e.g. metadata.user.patient_id"
        )
    if group_by is not None and (written := _written_under(group_by)) is not None:
        raise ValueError(
            f"group_by: {shorten(group_by, 120)} holds {written}, which the split itself writes (the subset tags, the "
            "run marker, or the update time), so a rerun would see other groups; "
            "group by a field the split leaves alone, e.g. metadata.user.patient_id"
        )
    if stratify_by is not None and group_by is not None:
        raise ValueError("stratify_by/group_by: use one of them, not both")
    if isinstance(bulk_size, bool) or not isinstance(bulk_size, int) or not 1 <= bulk_size <= BULK_CHUNK:
        raise ValueError(
            f"bulk_size: {shorten(bulk_size, 120)} is not an integer from 1 to {BULK_CHUNK}; use e.g. 1000"
        )


def split_dataset(
    dataset: Any,
    config: SplitConfig | Mapping[str, Any] | None,
    filters: Any = None,
    stratify_by: str | None = None,
    group_by: str | None = None,
    seed: int | None = None,
    dry_run: bool = False,
    reassign: bool = False,
    show_progress: bool | None = None,
    bulk_size: int = BULK_CHUNK,
) -> SplitSummary:
    """Edge: split a whole dataset into the configured subsets with bulk tag updates.

    Items are listed page by page (1,000 per page), assigned with the pure functions
    (:func:`assign_exact`, :func:`assign_stratified`, :func:`assign_grouped`), then tagged with one
    bulk request per subset per 1,000 items. Items already tagged with a configured subset keep it
    unless ``reassign``; items whose tags are already right are not written.

    Rerun after an interruption: the items a run tags also get its run marker
    ``metadata.user.activeLearning.split`` (:func:`run_marker` of :func:`batch_fingerprint`) in
    the same bulk request. A rerun with the same inputs re-decides the items carrying its own
    marker instead of treating them as sticky, so it ends exactly where an uninterrupted run
    ends, in every mode (exact, stratified, grouped).

    Parameters
    ----------
    dataset : dl.Dataset
    config : SplitConfig or dict or None
        A validated config or a raw node config (validated here, before any request).
    filters : dl.Filters, optional
        Which items to split (default: all files). Not modified.
    stratify_by : {None, "label"}
    group_by : str, optional
        Dotted item field (``metadata.user.<field>``) whose equal values stay together.
    seed : int, optional
        Seed of the assignment; ``None`` uses ``config.seed``.
    dry_run : bool
        Decide and summarise, write nothing.
    reassign : bool
        Ignore existing subset tags.
    show_progress : bool, optional
        Progress bar (``None``: only on a terminal).
    bulk_size : int
        Items per bulk update request, 1 to 1,000 (the platform's page size).

    Returns
    -------
    SplitSummary

    Examples
    --------
    >>> # summary = split_dataset(dataset, {"groups": [...]}, stratify_by="label", dry_run=True)
    """
    import dtlpy as dl
    from tqdm import tqdm

    if not isinstance(config, SplitConfig):
        config = SplitConfig.from_node_config(config)
    check_batch_options(stratify_by, group_by, bulk_size)
    if seed is None:
        seed = config.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: {seed!r} is not an integer >= 0; use e.g. seed=0")

    item_tags: dict[str, Any] = {}
    item_marks: dict[str, Any] = {}
    item_groups: dict[str, Any] | None = {} if group_by else None
    with tqdm(desc="listing items", unit="item", disable=None if show_progress is None else not show_progress) as bar:
        for page in _item_pages(dataset, filters):
            for item in page:
                system = (item.get("metadata") or {}).get("system") or {}
                item_tags[item["id"]] = system.get("tags")
                mark = run_mark_of(item)
                if mark is not None:
                    item_marks[item["id"]] = mark
                if item_groups is not None:
                    item_groups[item["id"]] = lookup_field(item, group_by)
            bar.update(len(page))
    item_labels = _dataset_labels(dataset, set(item_tags)) if stratify_by == "label" else None
    fingerprint = batch_fingerprint(
        item_tags, config, item_labels=item_labels, item_groups=item_groups, seed=seed, reassign=reassign
    )
    assignments, sticky = decide_batch(
        item_tags,
        config,
        item_labels=item_labels,
        item_groups=item_groups,
        seed=seed,
        reassign=reassign,
        item_marks=item_marks,
        fingerprint=fingerprint,
    )
    plan = plan_updates(assignments, item_tags, config, chunk=bulk_size, sticky=sticky, fingerprint=fingerprint)
    changed = sum(len(ids) for _, _, ids, _ in plan)
    logger.info(
        "split of %d items: %d keep their subset, %d to tag in %d bulk requests%s",
        len(assignments),
        len(sticky),
        changed,
        len(plan),
        " (dry run)" if dry_run else "",
    )
    requests = len(plan) if dry_run else 0
    if not dry_run:
        with tqdm(
            total=changed, desc="tagging", unit="item", disable=None if show_progress is None else not show_progress
        ) as bar:
            for subset, patch, ids, marker in plan:
                write_filter = dl.Filters(use_defaults=False)
                write_filter.add(field="id", values=list(ids), operator=dl.FiltersOperations.IN)
                mark_update = None
                if marker is not None:  # rides on the same request: metadata.user.activeLearning.split
                    mark_update = {RUN_MARK_PATH[0]: {RUN_MARK_PATH[1]: marker}}
                result = dataset.items.update(
                    filters=write_filter,
                    update_values=mark_update,
                    system_update_values={"tags": patch},
                    system_metadata=True,
                )
                requests += 1
                if result is None:
                    raise RuntimeError(f"bulk tagging of {len(ids)} items with {subset!r} failed")
                bar.update(len(ids))
    notes = ()
    if group_by:
        missing = sum(1 for v in (item_groups or {}).values() if v is None)
        if missing:
            notes = (f"{missing} items have no {group_by}; each was treated as a group of its own",)
    per_subset, per_label, targets = summarize(assignments, config, item_labels)
    kept = sum(1 for i, s in assignments.items() if existing_subset(item_tags.get(i), config) == s)
    return SplitSummary(
        assignments=assignments,
        per_subset=per_subset,
        per_label=per_label,
        targets=targets,
        sticky=kept,
        changed=changed,
        write_requests=requests,
        dry_run=dry_run,
        notes=notes,
        fingerprint=fingerprint,
    )
