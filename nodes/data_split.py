"""Model Data Split node: route each item to one subset (train / validation / test ...) and tag it.

The node config is the ``customNodeConfig`` the dataSplit panel stores on the pipeline node; it is
parsed once into a frozen :class:`SplitConfig` (JSON Schema ``nodes/schemas/data_split_config.json``
first, then the checks a schema cannot express). The decisions are pure functions over plain data:

* per-item mode (the pipeline node): :func:`subset_for_item` maps a stable hash of
  ``(seed, item id)`` onto the cumulative distribution, :func:`existing_subset` keeps an item's
  configured subset tag (sticky) and :func:`tags_after_assignment` computes the new tags;
* batch mode (``python main.py split``): :func:`assign_exact` (largest remainder),
  :func:`assign_stratified` (iterative stratification over labels) and :func:`assign_grouped`
  (items sharing a value never straddle subsets) split a whole dataset at once.

The platform is touched only by the functions marked *edge*: :func:`run_node` (one item, called by
``main.ServiceRunner.data_split``), :func:`split_dataset` and :func:`run_cli`.

Tag semantics: an item is *in* subset ``s`` when ``metadata.system.tags[s] is True`` (the original
DQL filters in ``pipeline_configs/`` select exactly that). Only these *membership* tags of the
configured subsets are ever removed; every other tag (``{"reviewed": true}``, ``{"train": false}``)
is preserved verbatim.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from nodes.common.paging import json_pages

logger = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "data_split_config.json"
CONFIG_FIELD = "customNodeConfig"
MIN_GROUPS, MAX_GROUPS = 2, 5
SUM_TOLERANCE = 0.01
DEFAULT_NODE_NAME = "Model Data Split"
DEFAULT_GROUPS = (("train", 80.0), ("validation", 10.0), ("test", 10.0))
BULK_CHUNK = 1000  # ids per bulk update request (one dtlpy page)
RUN_MARK_PATH = ("activeLearning", "split")  # metadata.user.activeLearning.split: which batch run wrote the tag
_GROUP_BY_RE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
_NAME_EXAMPLE = '"name": "train"'
_DISTRIBUTION_EXAMPLE = '"distribution": 80'


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubsetShare:
    """One configured subset: its name (also the tag key and the routing action) and its share.

    Parameters
    ----------
    name : str
        Subset name, ``[A-Za-z0-9_]+``.
    share : float
        Percentage of items, 0 to 100.

    Examples
    --------
    >>> SubsetShare("train", 80.0).name
    'train'
    """

    name: str
    share: float


@dataclass(frozen=True)
class SplitConfig:
    """The validated Model Data Split node config.

    Parameters
    ----------
    groups : tuple of SubsetShare
        2 to 5 subsets with unique names whose shares sum to 100.
    item_metadata : bool
        Write ``metadata.system.tags[<subset>] = true`` on the item (panel default true).
    seed : int
        Changes the hash-based assignment; 0 by default.
    node_name : str
        The node's display name (informational).

    Examples
    --------
    >>> config = SplitConfig.from_node_config(None)
    >>> [(g.name, g.share) for g in config.groups]
    [('train', 80.0), ('validation', 10.0), ('test', 10.0)]
    """

    groups: tuple[SubsetShare, ...]
    item_metadata: bool = True
    seed: int = 0
    node_name: str = DEFAULT_NODE_NAME

    @property
    def subset_names(self) -> tuple[str, ...]:
        """Configured subset names in configuration order."""
        return tuple(g.name for g in self.groups)

    @property
    def shares(self) -> dict[str, float]:
        """``{subset name: percentage}`` in configuration order."""
        return {g.name: g.share for g in self.groups}

    @classmethod
    def default(cls) -> SplitConfig:
        """The panel defaults: train 80 / validation 10 / test 10, ``itemMetadata`` true.

        Examples
        --------
        >>> SplitConfig.default().item_metadata
        True
        """
        return cls(groups=tuple(SubsetShare(n, s) for n, s in DEFAULT_GROUPS))

    @classmethod
    def from_node_config(cls, raw: Mapping[str, Any] | None, source: str = CONFIG_FIELD) -> SplitConfig:
        """Validate a panel ``customNodeConfig`` and build the config; ``None`` gives the defaults.

        Parameters
        ----------
        raw : mapping or None
            The node config as stored by the panel (not modified).
        source : str
            Name of the config in error messages (``customNodeConfig``, ``--subsets``...).

        Returns
        -------
        SplitConfig

        Raises
        ------
        ValueError
            Naming the field (dotted path), the bad value and the fix.

        Examples
        --------
        >>> cfg = SplitConfig.from_node_config({"groups": [{"name": "a", "distribution": "60"},
        ...                                                {"name": "b", "distribution": 40}]})
        >>> cfg.shares
        {'a': 60.0, 'b': 40.0}
        >>> SplitConfig.from_node_config({"distributeEqually": True, "groups": [
        ...     {"name": n, "distribution": 0} for n in ("a", "b", "c")]}).shares
        {'a': 33.33, 'b': 33.33, 'c': 33.34}
        """
        if raw is None:
            logger.info("%s is missing: using the panel defaults train 80 / validation 10 / test 10", source)
            return cls.default()
        if not isinstance(raw, Mapping):
            raise ValueError(
                f"{source}: {_short(raw)} is not an object; use e.g. "
                '{"groups": [{"name": "train", "distribution": 80}, {"name": "test", "distribution": 20}]}'
            )
        raw = copy.deepcopy(dict(raw))
        _schema_check(raw, source)
        groups_raw = raw["groups"]
        names = [g["name"] for g in groups_raw]
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                raise ValueError(
                    f"{source}.groups[{i}].name: {name!r} is already the name of groups[{seen[name]}]; "
                    "give every group a unique name"
                )
            seen[name] = i
        shares = []
        for i, g in enumerate(groups_raw):
            value = _to_number(g["distribution"])
            if not math.isfinite(value) or value < 0 or value > 100:
                raise ValueError(
                    f"{source}.groups[{i}].distribution: {_short(g['distribution'])} is not a number from 0 to 100; "
                    f"use e.g. {_DISTRIBUTION_EXAMPLE}"
                )
            shares.append(value)
        if raw.get("distributeEqually", False):
            shares = equal_shares(len(names))
        else:
            total = math.fsum(shares)
            if abs(total - 100.0) > SUM_TOLERANCE:
                listing = " + ".join(f"{s:g}" for s in shares)
                raise ValueError(
                    f"{source}.groups[*].distribution: {listing} = {total:g}, not 100; "
                    'adjust the distributions to sum to 100 (or set "distributeEqually": true)'
                )
            if total <= 0:  # pragma: no cover - unreachable after the sum check, kept for clarity
                raise ValueError(f"{source}.groups[*].distribution: all zero; give at least one group a share")
        validation = raw.get("validation")
        if isinstance(validation, Mapping) and validation.get("valid") is False:
            logger.warning(
                "%s.validation: the panel reported errors %s; the config passed our checks",
                source,
                validation.get("errors"),
            )
        seed = raw.get("seed")
        return cls(
            groups=tuple(SubsetShare(n, float(s)) for n, s in zip(names, shares, strict=True)),
            item_metadata=bool(raw.get("itemMetadata", True)),
            seed=int(seed) if seed is not None else 0,
            node_name=raw.get("name", DEFAULT_NODE_NAME),
        )

    @classmethod
    def from_subsets_arg(cls, text: str, seed: int = 0, source: str = "--subsets") -> SplitConfig:
        """Build a config from the CLI form ``train=80,validation=10,test=10``.

        Examples
        --------
        >>> SplitConfig.from_subsets_arg("train=70,test=30", seed=3).shares
        {'train': 70.0, 'test': 30.0}
        """
        groups = []
        for i, part in enumerate(p.strip() for p in str(text).split(",")):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError(
                    f"{source}[{i}]: {part!r} is not name=percent; example: --subsets train=80,validation=10,test=10"
                )
            groups.append({"name": name.strip(), "distribution": value.strip()})
        return cls.from_node_config({"groups": groups, "seed": seed, "itemMetadata": True}, source=source)


@cache
def _schema_validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


_FIX_BY_FIELD = {
    "name": 'use letters, digits and underscores, e.g. "train"',
    "distribution": f"use a number from 0 to 100, e.g. {_DISTRIBUTION_EXAMPLE}",
    "groups": 'use 2 to 5 groups like [{"name": "train", "distribution": 80}, {"name": "test", "distribution": 20}]',
    "itemMetadata": 'use true or false, e.g. "itemMetadata": true',
    "distributeEqually": 'use true or false, e.g. "distributeEqually": false',
    "seed": 'use an integer from 0 to 4294967295, e.g. "seed": 0',
    "validation": 'use {"valid": true, "errors": []}',
    "ports": "leave ports to the panel",
}


def _path(source: str, parts: Iterable[Any]) -> str:
    out = source
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _fix_for(parts: Sequence[Any]) -> str:
    if list(parts) == ["name"]:
        return 'use letters, digits, spaces, "-" and "_", e.g. "name": "Model Data Split"'
    for p in reversed(parts):
        if isinstance(p, str) and p in _FIX_BY_FIELD:
            return _FIX_BY_FIELD[p]
    return "see nodes/schemas/data_split_config.json"


def _short(value: Any) -> str:
    text = json.dumps(value, default=repr) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_error_message(error, source: str) -> str:
    parts = list(error.absolute_path)
    where = _path(source, parts)
    value = error.instance
    fix = _fix_for(parts)
    kind = error.validator
    if kind == "required":
        missing = [m for m in error.validator_value if isinstance(value, Mapping) and m not in value]
        key = missing[0] if missing else error.validator_value[0]
        example = {"name": _NAME_EXAMPLE, "distribution": _DISTRIBUTION_EXAMPLE}.get(
            key, '"groups": [{"name": "train", "distribution": 80}, {"name": "test", "distribution": 20}]'
        )
        return f"{where}: {key!r} is missing; add it, e.g. {example}"
    if kind == "minimum":
        return f"{where}: {_short(value)} is below {error.validator_value}; {fix}"
    if kind == "maximum":
        return f"{where}: {_short(value)} is above {error.validator_value}; {fix}"
    if kind == "minItems":
        return f"{where}: {len(value)} given, at least {error.validator_value} needed; {fix}"
    if kind == "maxItems":
        return f"{where}: {len(value)} given, at most {error.validator_value} allowed; {fix}"
    if kind == "minLength":
        return f"{where}: {_short(value)} is empty; {fix}"
    if kind == "maxLength":
        return f"{where}: {_short(value)} is longer than {error.validator_value} characters; {fix}"
    if kind == "pattern":
        return f"{where}: {_short(value)} has characters outside {error.validator_value}; {fix}"
    if kind == "anyOf" and parts and parts[-1] == "distribution":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            side = "below 0" if value < 0 else "above 100"
            return f"{where}: {_short(value)} is {side}; {fix}"
        return f"{where}: {_short(value)} is not a number from 0 to 100 or a numeric string; {fix}"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{where}: {_short(value)} is not of type {expected}; {fix}"
    return f"{where}: {_short(value)} is invalid ({error.message}); {fix}"


def _schema_check(raw: dict, source: str) -> None:
    errors = list(_schema_validator().iter_errors(raw))
    if errors:
        # one message per field: the most specific check wins (an empty name is "empty", not "bad characters")
        priority = {"required": 0, "type": 1, "minLength": 2, "minItems": 2, "maxItems": 2}
        first: dict[tuple, Any] = {}
        for e in sorted(errors, key=lambda e: priority.get(e.validator, 5)):
            first.setdefault(tuple(str(p) for p in e.absolute_path), e)
        ordered = sorted(first.values(), key=lambda e: [str(p) for p in e.absolute_path])
        messages = list(dict.fromkeys(_schema_error_message(e, source) for e in ordered))
        raise ValueError("; ".join(messages))


def _to_number(value: Any) -> float:
    return float(value.strip()) if isinstance(value, str) else float(value)


def equal_shares(n: int) -> list[float]:
    """Equal shares as the panel computes them: ``round(100 / n, 2)`` each, remainder to the last.

    Examples
    --------
    >>> equal_shares(3)
    [33.33, 33.33, 33.34]
    """
    each = round(100.0 / n, 2)
    shares = [each] * n
    remainder = round(100.0 - each * n, 2)
    if remainder > 0:
        shares[-1] = round(shares[-1] + remainder, 2)
    return shares


# ---------------------------------------------------------------------------------------------
# Per-item decisions (pure)
# ---------------------------------------------------------------------------------------------


def _hash_int(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big")


def unit_hash(seed: int, key: str) -> float:
    """A stable pseudo-uniform number in [0, 1) from ``(seed, key)`` (BLAKE2b, no global RNG).

    Examples
    --------
    >>> unit_hash(0, "abc") == unit_hash(0, "abc")
    True
    """
    return _hash_int(seed, key) / 2.0**64


def subset_for_item(item_id: str, config: SplitConfig) -> str:
    """The subset of ``item_id``: its hash mapped onto the cumulative distribution.

    Subsets with a share of 0 are never chosen.

    Examples
    --------
    >>> cfg = SplitConfig.default()
    >>> subset_for_item("item-1", cfg) == subset_for_item("item-1", cfg)
    True
    >>> subset_for_item("item-1", cfg) in cfg.subset_names
    True
    """
    u = unit_hash(config.seed, item_id)
    total = math.fsum(g.share for g in config.groups)
    cumulative = 0.0
    chosen = None
    for g in config.groups:
        if g.share <= 0:
            continue
        chosen = g.name
        cumulative += g.share / total
        if u < cumulative:
            return g.name
    return chosen  # float rounding at the top end: the last group with a share


def membership_tags(tags: Any, config: SplitConfig) -> list[str]:
    """Configured subsets whose tag is exactly ``True``, in configuration order.

    Examples
    --------
    >>> membership_tags({"test": True, "train": False, "x": True}, SplitConfig.default())
    ['test']
    """
    if not isinstance(tags, Mapping):
        return []
    return [name for name in config.subset_names if tags.get(name) is True]


def existing_subset(tags: Any, config: SplitConfig) -> str | None:
    """The subset an item already belongs to (sticky), or ``None``.

    Only configured subset names whose tag is exactly ``True`` count; other tags are ignored.
    If several configured tags are true the first configured group wins (and
    :func:`tags_after_assignment` then removes the others).

    Examples
    --------
    >>> cfg = SplitConfig.default()
    >>> existing_subset({"reviewed": True, "train": False}, cfg) is None
    True
    >>> existing_subset({"test": True, "validation": True}, cfg)
    'validation'
    """
    members = membership_tags(tags, config)
    return members[0] if members else None


def tags_after_assignment(tags: Any, subset: str, config: SplitConfig) -> dict:
    """A new tags dict: ``subset`` set to ``True``, other configured membership tags removed.

    The input is not modified; tags that are not configured subset names, and configured names
    whose value is not ``True`` (e.g. ``{"train": false}``), are kept.

    Examples
    --------
    >>> tags_after_assignment({"test": True, "reviewed": True}, "train", SplitConfig.default())
    {'reviewed': True, 'train': True}
    """
    if subset not in config.subset_names:
        raise ValueError(f"subset: {subset!r} is not one of the configured subsets {list(config.subset_names)}")
    new = copy.deepcopy(dict(tags)) if isinstance(tags, Mapping) else {}
    for name in membership_tags(new, config):
        if name != subset:
            del new[name]
    new[subset] = True
    return new


def strip_model_metadata(metadata: Any) -> dict | None:
    """A copy of an annotation's metadata without ``user.model`` / ``system.model``, or ``None``.

    ``None`` means the annotation carries no model metadata (nothing to update).

    Examples
    --------
    >>> strip_model_metadata({"user": {"model": {"name": "m"}, "k": 1}, "system": {}})
    {'user': {'k': 1}, 'system': {}}
    >>> strip_model_metadata({"user": {}}) is None
    True
    """
    if not isinstance(metadata, Mapping):
        return None
    carries = any(
        isinstance(metadata.get(space), Mapping) and "model" in metadata[space] for space in ("user", "system")
    )
    if not carries:
        return None
    new = copy.deepcopy(dict(metadata))
    for space in ("user", "system"):
        if isinstance(new.get(space), dict):
            new[space].pop("model", None)
    return new


# ---------------------------------------------------------------------------------------------
# Batch decisions (pure)
# ---------------------------------------------------------------------------------------------


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (Hamilton's largest remainder).

    Each part differs from its exact quota by less than 1; ties go to the earlier weight.

    Examples
    --------
    >>> largest_remainder(10, [80, 10, 10])
    [8, 1, 1]
    >>> largest_remainder(2, [1, 1, 1])
    [1, 1, 0]
    """
    if total < 0:
        raise ValueError(f"total: {total} is negative")
    exact = [Fraction(str(w)) if isinstance(w, float) else Fraction(w) for w in weights]
    wsum = sum(exact, Fraction(0))
    if total == 0:
        return [0] * len(exact)
    if wsum <= 0 or any(w < 0 for w in exact):
        raise ValueError(f"weights: {list(weights)} must be >= 0 with a positive sum")
    quotas = [total * w / wsum for w in exact]
    parts = [math.floor(q) for q in quotas]
    left = total - sum(parts)
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def _free_and_sticky(
    item_ids: Iterable[str], sticky: Mapping[str, str] | None, names: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    sticky = dict(sticky or {})
    unknown = {s for s in sticky.values() if s not in names}
    if unknown:
        raise ValueError(f"sticky: subsets {sorted(unknown)} are not configured ({list(names)})")
    ids = list(dict.fromkeys(item_ids))
    free = [i for i in ids if i not in sticky]
    return free, sticky


def _targets(n: int, shares: Mapping[str, float]) -> dict[str, int]:
    return dict(zip(shares, largest_remainder(n, list(shares.values())), strict=True))


def assign_exact(
    item_ids: Iterable[str], shares: Mapping[str, float], seed: int = 0, sticky: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Assign items so subset sizes match the shares exactly (each within 1 item of its target).

    Items are ordered by a stable hash of ``(seed, id)`` and cut into consecutive runs, so the
    result does not depend on the order of ``item_ids``. ``sticky`` items keep their subset and
    count toward the targets; the free items fill what is left.

    Parameters
    ----------
    item_ids : iterable of str
    shares : mapping
        ``{subset: percentage}`` in configuration order.
    seed : int
    sticky : mapping, optional
        ``{item id: subset}`` of items that keep their subset.

    Returns
    -------
    dict
        ``{item id: subset}`` for every item (sticky ones included).

    Examples
    --------
    >>> out = assign_exact([f"i{k}" for k in range(10)], {"train": 80, "test": 20})
    >>> sorted(Counter(out.values()).items())
    [('test', 2), ('train', 8)]
    """
    names = list(shares)
    free, sticky = _free_and_sticky(item_ids, sticky, names)
    result = dict(sticky)
    if not free:
        return result
    targets = _targets(len(free) + len(sticky), shares)
    have = Counter(sticky.values())
    deficits = [max(0, targets[s] - have[s]) for s in names]
    quotas = deficits if sum(deficits) == len(free) else largest_remainder(len(free), deficits)
    ordered = sorted(free, key=lambda i: (_hash_int(seed, i), i))
    start = 0
    for name, quota in zip(names, quotas, strict=True):
        for item_id in ordered[start : start + quota]:
            result[item_id] = name
        start += quota
    return result


def assign_stratified(
    item_labels: Mapping[str, Collection[str]],
    shares: Mapping[str, float],
    seed: int = 0,
    sticky: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Iterative stratification (Sechidis et al., 2011) of multi-label items.

    Each label's items are spread over the subsets by that label's own largest-remainder
    targets: with one label per item every label's count per subset is within 1 item of its
    target; with several labels per item the rarest label is placed first (ties: the subset the
    item's other labels need most, then the subset that needs the most items, then the first
    configured), and a swap repair then brings every label within 1 item of its target where
    the label combinations allow it. Items without labels fill the remaining subset sizes.

    Parameters
    ----------
    item_labels : mapping
        ``{item id: labels}``; every item to assign must be a key (labels may be empty).
    shares : mapping
        ``{subset: percentage}``.
    seed : int
        Orders the items inside each label (stable hash).
    sticky : mapping, optional
        ``{item id: subset}`` kept as is and counted toward every target.

    Returns
    -------
    dict
        ``{item id: subset}``.

    Examples
    --------
    >>> items = {f"c{k}": ["cat"] for k in range(10)} | {f"d{k}": ["dog"] for k in range(10)}
    >>> out = assign_stratified(items, {"train": 80, "test": 20})
    >>> sorted(Counter((out[i], items[i][0]) for i in items).items())
    [(('test', 'cat'), 2), (('test', 'dog'), 2), (('train', 'cat'), 8), (('train', 'dog'), 8)]
    """
    names = [n for n in shares]
    free, sticky = _free_and_sticky(item_labels, sticky, names)
    labels_of = {i: sorted(set(item_labels.get(i, ()))) for i in set(free) | set(sticky)}
    result = dict(sticky)
    eligible = [n for n in names if shares[n] > 0]
    overall = _targets(len(labels_of), shares)
    label_totals = Counter(lab for labs in labels_of.values() for lab in labs)
    desired = {lab: _targets(n, shares) for lab, n in label_totals.items()}
    for item_id, subset in sticky.items():
        overall[subset] -= 1
        for lab in labels_of[item_id]:
            desired[lab][subset] -= 1

    order = {i: (_hash_int(seed, i), i) for i in free}
    by_label: dict[str, list[str]] = defaultdict(list)
    for item_id in free:
        for lab in labels_of[item_id]:
            by_label[lab].append(item_id)
    for items in by_label.values():
        items.sort(key=order.__getitem__)
    rank = {n: k for k, n in enumerate(names)}

    def place(item_id: str, label: str | None) -> None:
        if label is None:
            key = lambda s: (overall[s], -rank[s])  # noqa: E731
        else:
            # the label being placed first, then the item's other labels, then the subset sizes
            key = lambda s: (  # noqa: E731
                desired[label][s],
                sum(desired[lab][s] for lab in labels_of[item_id]),
                overall[s],
                -rank[s],
            )
        subset = max(eligible, key=key)
        result[item_id] = subset
        overall[subset] -= 1
        for lab in labels_of[item_id]:
            desired[lab][subset] -= 1

    remaining = {lab: len(items) for lab, items in by_label.items()}
    while remaining:
        label = min(remaining, key=lambda lab: (remaining[lab], lab))
        for item_id in by_label[label]:
            if item_id not in result:
                place(item_id, label)
                for lab in labels_of[item_id]:
                    if lab in remaining:
                        remaining[lab] -= 1
        del remaining[label]
        for lab in [lab for lab, n in remaining.items() if n <= 0]:
            del remaining[lab]
    for item_id in sorted((i for i in free if i not in result), key=order.__getitem__):
        place(item_id, None)
    label_targets = {lab: {s: n * shares[s] / 100 for s in names} for lab, n in label_totals.items()}
    _repair_by_swaps(result, labels_of, free, label_targets, eligible, order)
    return result


MAX_SWAP_SIGNATURES = 256
MAX_SWAPS = 5000


def _repair_by_swaps(
    result: dict[str, str],
    labels_of: Mapping[str, Sequence[str]],
    free: Sequence[str],
    label_targets: Mapping[str, Mapping[str, float]],
    eligible: Sequence[str],
    order: Mapping[str, tuple],
) -> int:
    """Local search after iterative stratification, while some label is more than 1 item off its
    target in some subset: swap two free items of different label sets between two subsets when
    that lowers the squared distance of all per-label counts to their targets. Subset sizes do not
    change; a cell already within 1 item of its target never leaves that band. Only runs with at
    most ``MAX_SWAP_SIGNATURES`` distinct label sets. Returns the number of swaps (deterministic:
    the worst cell first, its best swap, ties in a fixed order)."""
    members: dict[tuple[tuple[str, ...], str], list[str]] = defaultdict(list)
    for item_id in sorted(free, key=order.__getitem__):
        members[(tuple(labels_of[item_id]), result[item_id])].append(item_id)
    signatures = sorted({sig for sig, _ in members})
    if len(signatures) > MAX_SWAP_SIGNATURES:
        logger.info("stratification: %d label combinations, skipping the swap repair", len(signatures))
        return 0
    count = Counter()
    for item_id, subset in result.items():
        for lab in labels_of[item_id]:
            count[(lab, subset)] += 1

    def swap_gain(a: tuple[str, ...], s1: str, b: tuple[str, ...], s2: str) -> float | None:
        # item with labels a moves s1 -> s2, item with labels b moves s2 -> s1
        change: Counter = Counter()
        for lab in a:
            change[(lab, s1)] -= 1
            change[(lab, s2)] += 1
        for lab in b:
            change[(lab, s2)] -= 1
            change[(lab, s1)] += 1
        delta = 0.0
        for (lab, subset), step in change.items():
            if not step:
                continue
            old = count[(lab, subset)] - label_targets[lab][subset]
            new = old + step
            if abs(new) > max(abs(old), 1.0):
                return None
            delta += new * new - old * old
        return delta

    def deviation(lab: str, subset: str) -> float:
        return count[(lab, subset)] - label_targets[lab][subset]

    swaps = 0
    while swaps < MAX_SWAPS:
        bad = sorted(
            ((lab, subset) for lab in label_targets for subset in eligible if abs(deviation(lab, subset)) > 1 + 1e-9),
            key=lambda cell: (-abs(deviation(*cell)), cell),
        )
        best = None
        for lab, s1 in bad:  # the worst cell that a swap can improve
            surplus = deviation(lab, s1) > 0
            for s2 in eligible:
                if s2 == s1:
                    continue
                for a in signatures:  # leaves s1
                    if (lab in a) != surplus or not members.get((a, s1)):
                        continue
                    for b in signatures:  # leaves s2
                        if (lab in b) == surplus or not members.get((b, s2)):
                            continue
                        gain = swap_gain(a, s1, b, s2)
                        if gain is not None and gain < -1e-9 and (best is None or gain < best[0]):
                            best = (gain, a, s1, b, s2)
            if best is not None:
                break
        if best is None:
            break
        _, a, s1, b, s2 = best
        x = members[(a, s1)].pop()
        y = members[(b, s2)].pop()
        result[x], result[y] = s2, s1
        members[(a, s2)].append(x)
        members[(b, s1)].append(y)
        for lab in a:
            count[(lab, s1)] -= 1
            count[(lab, s2)] += 1
        for lab in b:
            count[(lab, s2)] -= 1
            count[(lab, s1)] += 1
        swaps += 1
    return swaps


def _group_key_text(value: Hashable) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def assign_grouped(
    item_groups: Mapping[str, Hashable | None],
    shares: Mapping[str, float],
    seed: int = 0,
    sticky: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Assign whole groups of items so that items sharing a group value never straddle subsets.

    Groups are placed largest first (equal sizes in stable-hash order) into the subset that still
    needs the most items. An item whose group value is ``None`` is a group of its own. A group
    with sticky members follows the subset most of them keep (ties: first configured); sticky
    members of another subset keep theirs (a warning is logged; pass no ``sticky`` to avoid it).

    Parameters
    ----------
    item_groups : mapping
        ``{item id: group value or None}``.
    shares : mapping
        ``{subset: percentage}``.
    seed : int
    sticky : mapping, optional
        ``{item id: subset}``.

    Returns
    -------
    dict
        ``{item id: subset}``.

    Examples
    --------
    >>> groups = {"a1": "a", "a2": "a", "b1": "b", "c1": "c", "d1": "d"}
    >>> out = assign_grouped(groups, {"train": 60, "test": 40})
    >>> out["a1"] == out["a2"]
    True
    """
    names = list(shares)
    free, sticky = _free_and_sticky(item_groups, sticky, names)
    rank = {n: k for k, n in enumerate(names)}
    eligible = [n for n in names if shares[n] > 0]
    members: dict[str, list[str]] = defaultdict(list)
    for item_id in list(free) + list(sticky):
        value = item_groups.get(item_id)
        key = "item:" + item_id if value is None else "value:" + _group_key_text(value)
        members[key].append(item_id)
    remaining = _targets(sum(len(m) for m in members.values()), shares)
    result: dict[str, str] = {}
    free_groups = []
    straddling = 0
    for key, ids in members.items():
        kept = Counter(sticky[i] for i in ids if i in sticky)
        if not kept:
            free_groups.append(key)
            continue
        subset = max(kept, key=lambda s: (kept[s], -rank[s]))
        straddling += len(kept) > 1
        for item_id in ids:
            result[item_id] = sticky.get(item_id, subset)
            remaining[result[item_id]] -= 1
    if straddling:
        logger.warning("%d groups already have members tagged with different subsets; they keep their tags", straddling)
    free_groups.sort(key=lambda k: (-len(members[k]), _hash_int(seed, k), k))
    for key in free_groups:
        subset = max(eligible, key=lambda s: (remaining[s], -rank[s]))
        for item_id in members[key]:
            result[item_id] = subset
        remaining[subset] -= len(members[key])
    return result


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
        if isinstance(tags, Mapping) and new == dict(tags):
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
        Bulk update requests sent (0 in a dry run).
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


# ---------------------------------------------------------------------------------------------
# Edge: the pipeline node
# ---------------------------------------------------------------------------------------------


def node_config_from_context(context: Any) -> Mapping[str, Any] | None:
    """Edge: the raw ``customNodeConfig`` of the running node, or ``None`` outside a pipeline.

    ``context.node`` resolves the pipeline (``GET /pipelines/{id}``) on first access.

    Examples
    --------
    >>> node_config_from_context(None) is None
    True
    """
    if context is None:
        logger.info("no context (running outside a pipeline): using the panel defaults")
        return None
    node = context.node
    if node is None:
        logger.info("context has no pipeline node (running outside a pipeline): using the panel defaults")
        return None
    metadata = node.metadata if isinstance(node.metadata, Mapping) else {}
    return metadata.get(CONFIG_FIELD)


def _remove_model_metadata(item: Any) -> int:
    """Edge: strip ``model`` from the item's annotations that carry it (1 listing + 1 PUT each)."""
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION, page_size=1000)
    annotations = item.annotations.list(filters=filters)
    updated = 0
    for annotation in annotations:
        new_metadata = strip_model_metadata(annotation.metadata)
        if new_metadata is None:
            continue
        annotation.metadata = new_metadata  # our own entity, fresh from the listing
        result = annotation.annotations.update(annotations=annotation, system_metadata=True)
        if not result:
            raise RuntimeError(
                f"removing model metadata from annotation {annotation.id} of item {item.id} failed "
                "(dtlpy logged the error above)"
            )
        updated += 1
    if updated:
        logger.info("item %s: %d reviewed predictions became ground truth (model metadata removed)", item.id, updated)
    return updated


def _write_item_tags(item: Any, new_tags: dict) -> Any:
    """Edge: PATCH the item's ``metadata.system.tags`` on a copy of the entity (one request)."""
    import dtlpy as dl

    working = dl.Item.from_json(_json=item.to_json(), client_api=item._client_api, dataset=item._dataset)
    working.metadata.setdefault("system", {})
    working.metadata["system"]["tags"] = new_tags
    updated = working.update(system_metadata=True)
    if updated is None:
        raise RuntimeError(f"writing tags {new_tags} on item {item.id} failed (dtlpy logged the error above)")
    return updated


def run_node(item: Any, progress: Any = None, context: Any = None) -> Any:
    """Edge: route ``item`` to one subset, tag it, and report the subset as the progress action.

    Requests: 1 annotation listing + 1 annotation update per annotation carrying model
    metadata + 1 item update, the last only when the tags change (a re-run writes nothing).

    Parameters
    ----------
    item : dl.Item
        Not modified; the updated entity is returned when tags were written.
    progress : dl.Progress, optional
        Receives ``update(action=<subset>)``.
    context : dl.Context, optional
        Pipeline context whose ``node.metadata["customNodeConfig"]`` is the node config.

    Returns
    -------
    dl.Item

    Examples
    --------
    >>> # inside a pipeline: ServiceRunner().data_split(item=item, progress=progress, context=context)
    """
    if item is None or not isinstance(getattr(item, "id", None), str) or not hasattr(item, "metadata"):
        raise ValueError(f"item: {_short(item)} is not a dl.Item; connect the node's input to an Item output")
    config = SplitConfig.from_node_config(node_config_from_context(context))
    tags = ((item.metadata or {}).get("system") or {}).get("tags")
    subset = existing_subset(tags, config)
    if subset is not None:
        logger.info("item %s keeps its subset %r (tag already set)", item.id, subset)
    else:
        subset = subset_for_item(item.id, config)
        logger.info("item %s assigned to %r (seed %d)", item.id, subset, config.seed)
    _remove_model_metadata(item)
    if config.item_metadata:
        new_tags = tags_after_assignment(tags, subset, config)
        if isinstance(tags, Mapping) and new_tags == dict(tags):
            logger.info("item %s already tagged %r: nothing to write", item.id, subset)
        else:
            item = _write_item_tags(item, new_tags)
    if progress is not None:
        progress.update(action=subset)
    return item


# ---------------------------------------------------------------------------------------------
# Edge: batch mode
# ---------------------------------------------------------------------------------------------


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
        raise ValueError(f"stratify_by: {stratify_by!r} is not supported; use 'label' or leave it out")
    if group_by is not None and not _GROUP_BY_RE.match(str(group_by)):
        raise ValueError(f"group_by: {group_by!r} is not a dotted field name; use e.g. metadata.user.patient_id")
    if group_by is not None and (group_by + ".").startswith("metadata.user." + ".".join(RUN_MARK_PATH[:1]) + "."):
        raise ValueError(
            f"group_by: {group_by!r} is where the split records which run wrote a tag; "
            "group by another field, e.g. metadata.user.patient_id"
        )
    if stratify_by is not None and group_by is not None:
        raise ValueError("stratify_by/group_by: use one of them, not both")
    if isinstance(bulk_size, bool) or not isinstance(bulk_size, int) or not 1 <= bulk_size <= BULK_CHUNK:
        raise ValueError(f"bulk_size: {bulk_size!r} is not an integer from 1 to {BULK_CHUNK}; use e.g. 1000")


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
    requests = 0
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


# ---------------------------------------------------------------------------------------------
# Edge: command line
# ---------------------------------------------------------------------------------------------


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
