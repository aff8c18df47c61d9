"""Input checks and key factorisation shared by every metrics entry point (errors name field and fix)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

DETECTION_INTERPOLATIONS = ("coco", "every_point", "11_point")
CLASSIFICATION_INTERPOLATIONS = ("step", "every_point", "coco", "11_point")
GEOMETRIES = ("box", "polygon", "mask")
BOX_COLUMNS = ("left", "top", "right", "bottom")
GEOMETRY_COLUMNS = {"box": BOX_COLUMNS, "polygon": ("polygon",), "mask": ("mask",)}


# --------------------------------------------------------------------------------------------
# Validation helpers (public functions validate here, then hand clean arrays to the core)
# --------------------------------------------------------------------------------------------


def _check_interpolation(interpolation: Any, allowed: Sequence[str], field: str) -> str:
    if not isinstance(interpolation, str) or interpolation not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{field}: {interpolation!r} is not one of {options}; example: interpolation={allowed[0]!r}")
    return interpolation


def _check_thresholds(iou_threshold: Any, field: str = "iou_threshold") -> tuple[np.ndarray, bool]:
    """Return (thresholds as float array, whether a scalar was given)."""
    scalar = np.ndim(iou_threshold) == 0
    try:
        values = np.atleast_1d(np.asarray(iou_threshold, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise ValueError(
            f"{field}: {iou_threshold!r} is not a number in (0, 1] or a sequence of them; example: {field}=0.5"
        ) from None
    if values.size == 0:
        raise ValueError(f"{field}: empty sequence; give at least one threshold in (0, 1], example: {field}=0.5")
    bad = values[~((values > 0) & (values <= 1))]
    if bad.size:
        raise ValueError(
            f"{field}: {float(bad[0])!r} is outside (0, 1]; use a threshold such as 0.5 "
            f"(or numpy.linspace(0.5, 0.95, 10) for the COCO range)"
        )
    if np.unique(values).size != values.size:
        raise ValueError(f"{field}: {values.tolist()!r} contains duplicates; list each threshold once")
    return values, scalar


def _check_frame(frame: Any, field: str, columns: Sequence[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(
            f"{field}: expected a pandas DataFrame with columns {list(columns)}, got {type(frame).__name__}"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{field}: missing column(s) {missing}; expected columns {list(columns)}")
    return frame


def _first_bad_row(frame: pd.DataFrame, mask: np.ndarray) -> Any:
    return frame.index[int(np.flatnonzero(mask)[0])]


def _float_column(frame: pd.DataFrame, column: str, field: str) -> np.ndarray:
    try:
        values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise ValueError(
            f"{field}.{column}: values must be numbers; convert the column with pandas.to_numeric"
        ) from None
    nan = np.isnan(values)
    if nan.any():
        raise ValueError(
            f"{field}.{column}: NaN at row {_first_bad_row(frame, nan)!r}; drop or fill rows with missing values"
        )
    infinite = np.isinf(values)
    if infinite.any():
        row = _first_bad_row(frame, infinite)
        raise ValueError(
            f"{field}.{column}: {float(values[infinite][0])!r} at row {row!r} is not a finite number; "
            f"drop the row or give a finite value"
        )
    return values


def _boxes_from_frame(frame: pd.DataFrame, field: str) -> np.ndarray:
    """(4, N) float rows left, top, right, bottom; checks NaN and inverted boxes."""
    left, top, right, bottom = (_float_column(frame, c, field) for c in BOX_COLUMNS)
    for low, high, name_low, name_high in ((left, right, "left", "right"), (top, bottom, "top", "bottom")):
        inverted = high < low
        if inverted.any():
            row = _first_bad_row(frame, inverted)
            raise ValueError(
                f"{field}.{name_high}: {float(high[inverted][0])!r} < {name_low} {float(low[inverted][0])!r} at row {row!r}; "
                f"boxes are (left, top, right, bottom) with {name_low} <= {name_high}"
            )
    return np.stack([left, top, right, bottom])


def _polygons_from_frame(frame: pd.DataFrame, field: str) -> np.ndarray:
    """Array of shapely polygons (valid, made valid when needed) from a ``polygon`` column."""
    import shapely

    coords_list = []
    for row, value in zip(frame.index, frame["polygon"].to_numpy(), strict=True):
        try:
            coords = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            coords = np.empty((0,))
        if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] < 3:
            raise ValueError(
                f"{field}.polygon: row {row!r} is not an (N, 2) array of N >= 3 vertices; "
                f"example: [[0, 0], [10, 0], [10, 5]]"
            )
        if not np.isfinite(coords).all():
            raise ValueError(f"{field}.polygon: NaN or infinite vertex at row {row!r}; drop or fix the row")
        coords_list.append(coords)
    if not coords_list:
        return np.empty(0, dtype=object)
    sizes = np.array([len(c) for c in coords_list])
    ring_index = np.repeat(np.arange(len(coords_list)), sizes)
    rings = shapely.linearrings(np.concatenate(coords_list), indices=ring_index)
    polygons = shapely.polygons(rings)
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():
        logger.warning(
            "%s: %d polygon(s) are invalid (e.g. self-intersecting, first at row %r); repaired with shapely.make_valid",
            field,
            int(invalid.sum()),
            frame.index[int(np.flatnonzero(invalid)[0])],
        )
        polygons = polygons.copy()
        polygons[invalid] = shapely.make_valid(polygons[invalid])
    return polygons


def _masks_from_frame(frame: pd.DataFrame, field: str) -> list[np.ndarray]:
    masks = []
    for row, value in zip(frame.index, frame["mask"].to_numpy(), strict=True):
        mask = np.asarray(value)
        if mask.ndim != 2 or mask.dtype != np.bool_:
            raise ValueError(
                f"{field}.mask: row {row!r} is not a 2-D boolean array (got dtype {mask.dtype}, "
                f"{mask.ndim} dims); convert with numpy.asarray(mask, dtype=bool)"
            )
        masks.append(mask)
    return masks


#: numpy kinds whose keys are factorised and sorted natively (bool, signed / unsigned int, float)
_NATIVE_KINDS = "biuf"


def _sort_uniques(uniques: np.ndarray, field: str) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each unique in sorted order, sorted uniques as objects); numbers sort natively,
    strings as fixed-width text."""
    values = np.asarray(uniques)
    if values.dtype.kind in _NATIVE_KINDS:
        order = np.argsort(values, kind="stable")
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        return rank, values[order].astype(object)
    values = np.asarray(uniques, dtype=object)
    try:
        if pd.api.types.infer_dtype(values, skipna=False) == "string":
            order = np.argsort(np.asarray(values.tolist(), dtype=str), kind="stable")
        else:
            order = np.argsort(values, kind="stable")
    except TypeError:
        raise ValueError(f"{field}: values of mixed, unorderable types; use one type (e.g. all str)") from None
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return rank, values[order]


def _factorize_sorted(values: np.ndarray, field: str = "item_id") -> tuple[np.ndarray, np.ndarray]:
    """Codes into the sorted unique values (hashing first, then sorting only the uniques)."""
    codes, uniques = pd.factorize(values, sort=False)
    rank, sorted_uniques = _sort_uniques(uniques, field)
    return rank[codes], sorted_uniques


def _key_codes(frame: pd.DataFrame, column: str, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Factorize one key column; a missing value is an error naming the row.

    Numeric and boolean numpy columns are hashed natively (no Python object per row); anything
    else (strings, mixed) as objects, which pandas hashes faster than its string extension arrays.
    """
    series = frame[column]
    native = isinstance(series.dtype, np.dtype) and series.dtype.kind in _NATIVE_KINDS
    values = series.to_numpy() if native or series.dtype == object else series.to_numpy(dtype=object)
    codes, uniques = pd.factorize(values, sort=False)
    missing = codes < 0
    if missing.any():
        raise ValueError(
            f"{field}.{column}: missing value at row {_first_bad_row(frame, missing)!r}; every row needs a {column}"
        )
    return codes, np.asarray(uniques) if native else np.asarray(uniques, dtype=object)


def _codes(
    gt: pd.DataFrame, pred: pd.DataFrame, column: str, extra: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint sorted factorization of a key column of both frames -> (gt codes, pred codes, uniques)."""
    gt_codes, gt_uniques = _key_codes(gt, column, "ground_truth")
    pred_codes, pred_uniques = _key_codes(pred, column, "predictions")
    parts = [gt_uniques, pred_uniques] if extra is None else [gt_uniques, pred_uniques, extra]
    union_codes, union = pd.factorize(np.concatenate(parts), sort=False)
    rank, sorted_values = _sort_uniques(union, column)
    final = rank[union_codes]
    return (
        final[: len(gt_uniques)][gt_codes],
        final[len(gt_uniques) : len(gt_uniques) + len(pred_uniques)][pred_codes],
        sorted_values,
    )
