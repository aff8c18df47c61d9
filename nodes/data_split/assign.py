"""Model Data Split decisions (pure): which subset each item goes to, and the tags that say so.

Per item (the pipeline node): :func:`subset_for_item` hashes ``(seed, item id)`` onto the
cumulative distribution, :func:`existing_subset` keeps a configured subset tag (sticky),
:func:`tags_after_assignment` computes the new tags and :func:`ground_truth_metadata` says which
predictions become ground truth. Whole dataset: :func:`assign_exact` (largest remainder),
:func:`assign_stratified` (over labels) and :func:`assign_grouped` (groups never straddle
subsets). Membership is a tag exactly ``true``; the rules and their reasons: docs/nodes.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from nodes.data_split.config import DEFAULT_GROUPS, SplitConfig

logger = logging.getLogger(__name__)


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
    If several configured tags are true the held-out one wins (:func:`conflict_winner`: ``test``,
    then ``validation``, then ``train``, then by name), whatever the configuration order, and
    :func:`tags_after_assignment` then removes the others: an item tagged both ``train`` and
    ``test`` stays in ``test``, because a test item that is also trained on leaks the evaluation,
    while a training item held out only costs one training example.

    Examples
    --------
    >>> cfg = SplitConfig.default()
    >>> existing_subset({"reviewed": True, "train": False}, cfg) is None
    True
    >>> existing_subset({"train": True, "test": True}, cfg), existing_subset({"test": True, "validation": True}, cfg)
    ('test', 'test')
    """
    members = membership_tags(tags, config)
    return conflict_winner(members) if members else None


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


def tags_changed(old: Any, new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` changes the tags ``old``, comparing JSON values (``1`` is not ``true``).

    Python's ``==`` says ``{"train": 1} == {"train": True}``; the platform's DQL ``= true`` does
    not select ``1``, so an item tagged ``{"train": 1}`` routed to ``train`` must be written.

    Examples
    --------
    >>> tags_changed({"train": 1}, {"train": True}), tags_changed({"train": True}, {"train": True})
    (True, False)
    >>> tags_changed(None, {})
    True
    """
    if not isinstance(old, Mapping):
        return True
    return json.dumps(dict(old), sort_keys=True, default=repr) != json.dumps(dict(new), sort_keys=True, default=repr)


APPROVED = "approved"  # dtlpy AnnotationStatus.APPROVED, in metadata.system.status: a reviewer approved it


def carries_model(metadata: Any) -> bool:
    """Whether an annotation's metadata marks it as a model prediction (``user.model`` or ``system.model``).

    A ``null`` ``model`` reads as absent: where the platform stores the ``null`` a removal sends,
    an annotation this node already turned into ground truth still carries ``model: null``.

    Examples
    --------
    >>> carries_model({"system": {"model": {"name": "m"}}}), carries_model({"user": {"k": 1}}), carries_model(None)
    (True, False, False)
    >>> carries_model({"user": {"model": None}})
    False
    """
    return isinstance(metadata, Mapping) and any(
        isinstance(metadata.get(space), Mapping) and metadata[space].get("model") is not None
        for space in ("user", "system")
    )


def ground_truth_metadata(metadata: Any, item_in_subset: bool) -> dict | None:
    """The metadata that turns a reviewed pre-annotation into ground truth, or ``None`` to leave it.

    The rule, per annotation (see the module docstring for the evidence):

    * not a prediction (no ``user.model`` / ``system.model``): ``None``, nothing to change;
    * the item is not yet in a configured subset (first routing): every prediction on it is a
      pre-annotation that went through the Labeling / Review task: it becomes ground truth;
    * the item is already in a subset (re-entry): a prediction stays a prediction (Evaluate's
      predictions live there), unless a reviewer approved that annotation
      (``metadata.system.status == "approved"``).

    Parameters
    ----------
    metadata : mapping
        The annotation's metadata (not modified).
    item_in_subset : bool
        The item already has a configured subset tag that is exactly ``true``.

    Returns
    -------
    dict or None
        A copy without ``user.model`` / ``system.model``, or ``None`` (no update).

    Examples
    --------
    >>> prediction = {"user": {"model": {"name": "m", "model_id": "1", "confidence": 0.9}}}
    >>> ground_truth_metadata(prediction, item_in_subset=False)
    {'user': {}}
    >>> ground_truth_metadata(prediction, item_in_subset=True) is None
    True
    >>> ground_truth_metadata({**prediction, "system": {"status": "approved"}}, item_in_subset=True)
    {'user': {}, 'system': {'status': 'approved'}}
    """
    if not carries_model(metadata):
        return None
    if item_in_subset:
        system = metadata.get("system")
        if not (isinstance(system, Mapping) and system.get("status") == APPROVED):
            return None
    return strip_model_metadata(metadata)


PIPELINE_SUBSETS = tuple(name for name, _ in DEFAULT_GROUPS)  # what the packaged DQL filters select


def known_subsets(config: SplitConfig) -> tuple[str, ...]:
    """The subset names whose ``true`` tag is a membership: the configured ones, then the pipeline's.

    ``train`` / ``validation`` / ``test`` are memberships even for a node that does not configure
    them: the packaged DQL filters (``pipeline_configs/*_subset_filter.json``) select them for
    Create New Model and Evaluate.

    Examples
    --------
    >>> known_subsets(SplitConfig.from_subsets_arg("train=50,holdout=50"))
    ('train', 'holdout', 'validation', 'test')
    """
    return config.subset_names + tuple(n for n in PIPELINE_SUBSETS if n not in config.subset_names)


def foreign_subset(tags: Any, config: SplitConfig) -> str | None:
    """A pipeline subset the item is in (tag exactly ``true``) that this node does not configure, or ``None``.

    Examples
    --------
    >>> foreign_subset({"test": True}, SplitConfig.from_subsets_arg("train=80,validation=20"))
    'test'
    >>> foreign_subset({"test": 1, "train": True}, SplitConfig.from_subsets_arg("train=80,validation=20")) is None
    True
    """
    if not isinstance(tags, Mapping):
        return None
    extra = [n for n in known_subsets(config) if n not in config.subset_names and tags.get(n) is True]
    return extra[0] if extra else None


def tags_patch(tags: Any, subset: str, config: SplitConfig) -> dict:
    """The merge patch of ``metadata.system.tags`` that puts an item in ``subset`` and no other subset.

    ``{subset: true}`` plus ``None`` (remove) for every other :func:`known_subsets` name, so the
    write also removes a membership another execution set meanwhile (the platform merges PATCH
    bodies; ``None`` removes a key). A known name whose value in ``tags`` is present but not
    ``true`` (``{"train": false}``) is kept. When the item has no tags object yet the patch is
    ``{subset: true}`` alone (removals would be stored as ``null`` in the new object); a race is
    then settled by :func:`settle_after_write`.

    Examples
    --------
    >>> tags_patch({"train": False, "reviewed": True}, "test", SplitConfig.default())
    {'test': True, 'validation': None}
    >>> tags_patch({}, "a", SplitConfig.from_subsets_arg("a=50,b=50"))
    {'a': True, 'b': None, 'train': None, 'validation': None, 'test': None}
    >>> tags_patch(None, "a", SplitConfig.from_subsets_arg("a=50,b=50"))
    {'a': True}
    """
    if subset not in config.subset_names:
        raise ValueError(f"subset: {subset!r} is not one of the configured subsets {list(config.subset_names)}")
    patch: dict[str, Any] = {subset: True}
    if not isinstance(tags, Mapping):
        return patch
    for name in known_subsets(config):
        if name != subset and not (name in tags and tags[name] is not True):
            patch[name] = None
    return patch


CONFLICT_ORDER = ("test", "validation", "train")  # held-out subsets first


def conflict_winner(names: Iterable[str]) -> str:
    """The subset an item keeps when concurrent writes left it in several: the same in every node.

    Independent of any node's configuration order, so two executions with different configs that
    both see the conflict keep the same subset: ``test``, then ``validation``, then ``train`` (an
    item two splits claimed at once stays held out rather than being trained on), then other names
    alphabetically.

    Examples
    --------
    >>> conflict_winner(["train", "test"]), conflict_winner(["b", "validation", "a"]), conflict_winner(["b", "a"])
    ('test', 'validation', 'a')
    """
    rank = {name: k for k, name in enumerate(CONFLICT_ORDER)}
    return min(names, key=lambda n: (rank.get(n, len(rank)), n))


def settle_after_write(server_tags: Any, written: str, config: SplitConfig) -> tuple[str, str | None, bool]:
    """After writing ``written``, the subset the item is in as the platform now has it.

    Two executions (e.g. two Data Split nodes with different configs) may write the same item at
    once. Reading the item back after writing decides, the same way in every execution, over the
    :func:`known_subsets` whose tag is exactly ``true``:

    * one: that is the item's subset (``written``, or the one a later writer set: the last write
      wins, nothing more is written);
    * several: :func:`conflict_winner` keeps one (the same whatever the node's config) and the
      others are removed;
    * none (a writer removed ours without setting its own): ``written`` is written again.

    Returns
    -------
    (subset, routable, rewrite)
        The item's subset; that subset if this node has it, else ``None`` (the caller refuses to
        route); whether to write again (:func:`tags_patch` of the subset).

    Examples
    --------
    >>> cfg = SplitConfig.default()
    >>> settle_after_write({"train": True}, "train", cfg), settle_after_write({"test": True}, "train", cfg)
    (('train', 'train', False), ('test', 'test', False))
    >>> settle_after_write({"test": True, "train": True, "x": 1}, "train", cfg)
    ('test', 'test', True)
    >>> settle_after_write({"test": True, "train": True}, "train", SplitConfig.from_subsets_arg("train=50,b=50"))
    ('test', None, True)
    >>> settle_after_write({"reviewed": True}, "train", cfg)
    ('train', 'train', True)
    """
    names = known_subsets(config)
    members = [n for n in names if isinstance(server_tags, Mapping) and server_tags.get(n) is True]
    if not members:
        return written, written, True
    keep = conflict_winner(members)
    return keep, keep if keep in config.subset_names else None, len(members) > 1


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
    if not carries_model(metadata):
        return None
    new = copy.deepcopy(dict(metadata))
    for space in ("user", "system"):
        if isinstance(new.get(space), dict):
            new[space].pop("model", None)
    return new


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
