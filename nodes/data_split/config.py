"""Model Data Split config: the panel's ``customNodeConfig`` parsed once into a frozen :class:`SplitConfig`.

Unknown keys (a typo such as ``itemMetdata``) are refused first, with the nearest valid key; the
JSON Schema ``nodes/schemas/data_split_config.json`` (shared with the dataSplit panel) runs next,
then the checks a schema cannot express (unique, visible names; shares summing to exactly 100 as
written). Errors are ``ValueError``s naming the field, the bad value and the fix.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from nodes.common.limits import check_json_value, check_visible_name, reject_unknown_keys

logger = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "data_split_config.json"
CONFIG_FIELD = "customNodeConfig"
MIN_GROUPS, MAX_GROUPS = 2, 5
#: Keys of the node config the node reads, and those the panel stores for itself (accepted, unread).
CONFIG_KEYS = ("groups", "distributeEqually", "itemMetadata", "seed")
PANEL_CONFIG_KEYS = ("name", "validation", "ports")
#: Keys of one group the node reads, and the one the panel adds (its row id).
GROUP_KEYS = ("name", "distribution")
PANEL_GROUP_KEYS = ("id",)
DEFAULT_NODE_NAME = "Model Data Split"
DEFAULT_GROUPS = (("train", 80.0), ("validation", 10.0), ("test", 10.0))
BULK_CHUNK = 1000  # ids per bulk update request (one dtlpy page)
RUN_MARK_PATH = ("activeLearning", "split")  # metadata.user.activeLearning.split: which batch run wrote the tag
_NAME_EXAMPLE = '"name": "train"'
_DISTRIBUTION_EXAMPLE = '"distribution": 80'


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
        check_json_value(raw, source)  # depth, size, NaN / inf: bounded before anything walks it
        raw = copy.deepcopy(dict(raw))
        reject_unknown_keys(source, raw, CONFIG_KEYS, PANEL_CONFIG_KEYS)
        if isinstance(raw.get("groups"), list):
            for i, group in enumerate(raw["groups"]):
                reject_unknown_keys(f"{source}.groups[{i}]", group, GROUP_KEYS, PANEL_GROUP_KEYS)
        _schema_check(raw, source)
        if "name" in raw:
            check_visible_name(f"{source}.name", raw["name"], example='"name": "Model Data Split"')
        groups_raw = raw["groups"]
        names = [g["name"] for g in groups_raw]
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            check_visible_name(f"{source}.groups[{i}].name", name, example=_NAME_EXAMPLE)
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
            # exactly 100 as written (decimal), as the docs and the panel say: 33.33 + 33.33 + 33.34
            exact = sum((_as_written(g["distribution"]) for g in groups_raw), Fraction(0))
            total = math.fsum(shares)
            if exact != 100:
                listing = " + ".join(f"{s:g}" for s in shares)
                raise ValueError(
                    f"{source}.groups[*].distribution: {listing} = {float(exact):.10g}, not 100; "
                    'adjust the distributions to sum to exactly 100 (or set "distributeEqually": true)'
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


def ecma_anchored(pattern: str) -> str:
    r"""A JSON Schema ``pattern`` rewritten so Python's ``re`` reads it as ECMA 262 does.

    JSON Schema patterns are ECMA regular expressions, where a final ``$`` matches only at the end
    of the string; in Python's ``re`` it also matches before a trailing newline, so
    ``^[A-Za-z0-9_]+$`` would accept ``"train\n"``. A final unescaped ``$`` becomes ``\Z``.

    Examples
    --------
    >>> ecma_anchored("^[A-Za-z0-9_]+$")
    '^[A-Za-z0-9_]+\\Z'
    >>> bool(re.search(ecma_anchored("^[a-z]+$"), "train\n")), bool(re.search("^[a-z]+$", "train\n"))
    (False, True)
    >>> ecma_anchored(r"^a\$")  # an escaped dollar is a character, not an anchor
    '^a\\$'
    """
    backslashes = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))
    if pattern.endswith("$") and backslashes % 2 == 0:
        return pattern[:-1] + r"\Z"
    return pattern


def _ecma_pattern(validator, pattern, instance, schema):
    """The ``pattern`` keyword with ECMA end anchors (see :func:`ecma_anchored`)."""
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not re.search(ecma_anchored(pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _schema_validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    # whole-string patterns as the panel (ECMA) reads them: "train\n" is not a valid name
    return jsonschema.validators.extend(cls, {"pattern": _ecma_pattern})(schema)


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


def _as_written(value: Any) -> Fraction:
    """A distribution as the decimal number written in the config (``0.1`` is 1/10, not the float)."""
    if isinstance(value, str):
        return Fraction(value.strip())
    if isinstance(value, float):
        return Fraction(repr(value))  # the shortest decimal that reads back as this float: what JSON held
    return Fraction(value)


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
