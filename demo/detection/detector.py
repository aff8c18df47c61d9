"""A small, trainable CPU object detector: multi-scale sliding windows, a scikit-learn classifier
over a background class and the digit classes, and per-class non-maximum suppression.

Pure numpy / scikit-learn / Pillow, no platform. :func:`fit_detector` trains on labelled scenes
(ground-truth crops, jittered copies, and background windows sampled from the same scenes);
:func:`detect` returns boxes with a confidence and the class-score vector of each. IoU comes from
:mod:`nodes.metrics` (the app's only IoU code).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from nodes.metrics import box_iou

BACKGROUND = "__background__"
WINDOW = 12  # side of the classifier's input patch
SIZES = (12, 16, 20, 24, 28, 32)  # window sides searched in the scene, pixels
CELL, ORIENTATIONS = 4, 6  # HOG-like cells of the patch
STEP = 3  # window stride in patch pixels (a quarter window at every scale)
NEGATIVE_IOU = 0.4  # windows overlapping every ground-truth box less than this are background
HARD_SHARE = 0.5  # of the background windows sampled, this share overlaps a box (IoU >= 0.1): learns where
NEGATIVES_PER_POSITIVE = 4
JITTERS = 2  # shifted / rescaled copies of each ground-truth crop
MIN_CONFIDENCE = 0.25
NMS_IOU = 0.3
MAX_DETECTIONS = 20


@dataclass(frozen=True)
class Detections:
    """Detections of one scene.

    Attributes
    ----------
    boxes : numpy.ndarray, shape (n, 4)
        ``left, top, right, bottom`` in pixels.
    labels : tuple of str
    confidences : numpy.ndarray, shape (n,)
        The winning class's probability (background counts against it).
    class_scores : numpy.ndarray, shape (n, n_classes)
        Each box's probability per object class (``classes`` order, background left out).
    """

    boxes: np.ndarray
    labels: tuple[str, ...]
    confidences: np.ndarray
    class_scores: np.ndarray


@dataclass
class Detector:
    """A fitted detector: the window classifier and its object classes."""

    classifier: object
    classes: tuple[str, ...]


def _pyramid_level(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """``image`` (float, [0, 1]) resized so a ``size``-pixel window becomes a ``WINDOW``-pixel patch."""
    from PIL import Image

    factor = WINDOW / size
    height, width = image.shape
    new_size = (max(WINDOW, round(width * factor)), max(WINDOW, round(height * factor)))
    pil = Image.fromarray(np.asarray(image, dtype=np.float32), mode="F")
    return np.asarray(pil.resize(new_size, Image.BILINEAR), dtype=np.float64), factor


def patch_features(patches: np.ndarray) -> np.ndarray:
    """Classifier features of ``WINDOW`` × ``WINDOW`` patches: contrast-normalised pixels and a
    histogram of gradient orientations per 4 × 4 cell (a small HOG, Dalal & Triggs 2005).

    Examples
    --------
    >>> patch_features(np.zeros((2, WINDOW, WINDOW))).shape
    (2, 198)
    """
    n = len(patches)
    if n == 0:
        return np.zeros((0, WINDOW * WINDOW + (WINDOW // CELL) ** 2 * ORIENTATIONS))
    flat = patches.reshape(n, -1)
    centred = flat - flat.mean(axis=1, keepdims=True)
    pixels = centred / (centred.std(axis=1, keepdims=True) + 0.05)
    gy, gx = np.gradient(patches, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    orientation = (np.arctan2(gy, gx) % np.pi) / np.pi * ORIENTATIONS  # unsigned, [0, ORIENTATIONS)
    bins = np.minimum(orientation.astype(int), ORIENTATIONS - 1)
    cells = WINDOW // CELL
    cell_of = (np.arange(WINDOW) // CELL)[:, None] * cells + (np.arange(WINDOW) // CELL)[None, :]
    index = (cell_of[None] * ORIENTATIONS + bins).reshape(n, -1) + (np.arange(n) * cells * cells * ORIENTATIONS)[
        :, None
    ]
    histogram = np.bincount(index.ravel(), weights=magnitude.reshape(-1), minlength=n * cells * cells * ORIENTATIONS)
    histogram = histogram.reshape(n, -1)
    histogram /= np.linalg.norm(histogram, axis=1, keepdims=True) + 0.05
    return np.hstack([pixels / 4.0, histogram])


@dataclass(frozen=True)
class WindowGrid:
    """Every window of every searched size over one scene, with the pyramid to read their patches from."""

    boxes: np.ndarray  # (n, 4) left, top, right, bottom
    level: np.ndarray  # (n,) index into levels
    row: np.ndarray  # (n,) patch row in its level
    col: np.ndarray  # (n,) patch column in its level
    levels: tuple[np.ndarray, ...]

    def features(self, which: np.ndarray | None = None) -> np.ndarray:
        """Features of the windows ``which`` (all by default)."""
        index = np.arange(len(self.boxes)) if which is None else np.asarray(which, dtype=int)
        patches = np.empty((len(index), WINDOW, WINDOW))
        for k, level in enumerate(self.levels):
            mine = np.flatnonzero(self.level[index] == k)
            if len(mine) == 0:
                continue
            views = np.lib.stride_tricks.sliding_window_view(level, (WINDOW, WINDOW))
            patches[mine] = views[self.row[index[mine]], self.col[index[mine]]]
        return patch_features(patches)


def window_grid(image: np.ndarray, sizes: tuple[int, ...] = SIZES) -> WindowGrid:
    """The windows of ``image`` at every size in ``sizes`` (stride ``STEP`` patch pixels).

    Examples
    --------
    >>> grid = window_grid(np.zeros((24, 24), dtype=np.uint8), sizes=(12,))
    >>> len(grid.boxes), grid.boxes[0].tolist(), grid.features([0]).shape
    (25, [0.0, 0.0, 12.0, 12.0], (1, 198))
    """
    scene = _as_float(image)
    boxes, levels, rows, cols, pyramid = [], [], [], [], []
    for size in sizes:
        if size > min(scene.shape):
            continue
        level, factor = _pyramid_level(scene, size)
        n_rows = (level.shape[0] - WINDOW) // STEP + 1
        n_cols = (level.shape[1] - WINDOW) // STEP + 1
        row = np.repeat(np.arange(n_rows) * STEP, n_cols)
        col = np.tile(np.arange(n_cols) * STEP, n_rows)
        top, left = row / factor, col / factor
        box = np.column_stack(
            [left, top, np.minimum(left + size, scene.shape[1]), np.minimum(top + size, scene.shape[0])]
        )
        boxes.append(box)
        levels.append(np.full(len(box), len(pyramid)))
        rows.append(row)
        cols.append(col)
        pyramid.append(level)
    if not boxes:
        empty = np.zeros(0, dtype=int)
        return WindowGrid(np.zeros((0, 4)), empty, empty, empty, ())
    return WindowGrid(
        np.vstack(boxes), np.concatenate(levels), np.concatenate(rows), np.concatenate(cols), tuple(pyramid)
    )


def sliding_windows(image: np.ndarray, sizes: tuple[int, ...] = SIZES) -> tuple[np.ndarray, np.ndarray]:
    """Every window of every size in ``sizes``: features and boxes.

    Parameters
    ----------
    image : numpy.ndarray, shape (H, W), uint8 or float in [0, 1]

    Returns
    -------
    features : numpy.ndarray, shape (n, n_features)
    boxes : numpy.ndarray, shape (n, 4)

    Examples
    --------
    >>> features, boxes = sliding_windows(np.zeros((24, 24), dtype=np.uint8), sizes=(12,))
    >>> features.shape[0] == boxes.shape[0], boxes[0].tolist()
    (True, [0.0, 0.0, 12.0, 12.0])
    """
    grid = window_grid(image, sizes)
    return grid.features(), grid.boxes


@dataclass(frozen=True)
class SceneWindows:
    """Every window of one scene with its features, computed once and reused by training and detection
    (the features do not depend on the model)."""

    boxes: np.ndarray  # (n, 4)
    features: np.ndarray  # (n, n_features), float32 to halve the memory


def scene_windows(image: np.ndarray) -> SceneWindows:
    """The windows of ``image`` and their features (float32), for :func:`fit_detector` and :func:`detect`.

    Examples
    --------
    >>> cached = scene_windows(np.zeros((24, 24), dtype=np.uint8))
    >>> cached.features.shape[0] == cached.boxes.shape[0], cached.features.dtype.name
    (True, 'float32')
    """
    grid = window_grid(image)
    return SceneWindows(grid.boxes, grid.features().astype(np.float32))


def _as_float(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    return array.astype(np.float64) / 255.0 if array.dtype == np.uint8 else array.astype(np.float64)


def _crop(scene: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The ``box`` region of ``scene`` resized to a ``WINDOW`` × ``WINDOW`` patch."""
    from PIL import Image

    left, top, right, bottom = (int(round(v)) for v in box)
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(max(right, left + 1), scene.shape[1]), min(max(bottom, top + 1), scene.shape[0])
    pil = Image.fromarray(np.asarray(scene[top:bottom, left:right], dtype=np.float32), mode="F")
    return np.asarray(pil.resize((WINDOW, WINDOW), Image.BILINEAR), dtype=np.float64)


def _jittered(box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    side = box[2] - box[0]
    scale = rng.uniform(0.9, 1.1)
    shift = rng.uniform(-0.1, 0.1, 2) * side
    centre = (box[:2] + box[2:]) / 2 + shift
    half = side * scale / 2
    return np.r_[centre - half, centre + half]


def training_set(
    images: list[np.ndarray] | np.ndarray,
    boxes: list[np.ndarray],
    labels: list[tuple[str, ...]],
    seed: int = 0,
    windows: list[SceneWindows] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Window features and targets (a digit label or ``BACKGROUND``) from labelled scenes.

    Each ground-truth box gives its exact crop and ``JITTERS`` shifted / rescaled copies; background
    windows (IoU below ``NEGATIVE_IOU`` with every box of their scene) are sampled,
    ``NEGATIVES_PER_POSITIVE`` per positive, at least 30 per scene (an empty scene is all background).
    ``windows`` (from :func:`scene_windows`, one per image) reuses window features computed once.
    """
    rng = np.random.default_rng(seed)
    features, targets = [], []
    for index, (image, scene_boxes, scene_labels) in enumerate(zip(images, boxes, labels, strict=True)):
        scene = _as_float(image)
        scene_boxes = np.asarray(scene_boxes, dtype=float).reshape(-1, 4)
        crops = []
        for box, label in zip(scene_boxes, scene_labels, strict=True):
            crops.append(_crop(scene, box))
            crops.extend(_crop(scene, _jittered(box, rng)) for _ in range(JITTERS))
            targets.extend([label] * (1 + JITTERS))
        if crops:
            features.append(patch_features(np.stack(crops)))
        cached = windows[index] if windows is not None else None
        grid = window_grid(scene) if cached is None else None
        grid_boxes = cached.boxes if cached is not None else grid.boxes
        overlap = box_iou(grid_boxes, scene_boxes).max(axis=1) if len(scene_boxes) else np.zeros(len(grid_boxes))
        background = overlap < NEGATIVE_IOU
        wanted = max(30, NEGATIVES_PER_POSITIVE * len(crops))
        hard = np.flatnonzero(background & (overlap >= 0.1))
        hard = rng.choice(hard, size=min(len(hard), int(wanted * HARD_SHARE)), replace=False)
        easy = np.flatnonzero(background & (overlap < 0.1))
        easy = rng.choice(easy, size=min(len(easy), wanted - len(hard)), replace=False)
        picked = np.r_[hard, easy].astype(int)
        features.append(grid.features(picked) if cached is None else cached.features[picked].astype(np.float64))
        targets.extend([BACKGROUND] * len(picked))
    return np.vstack(features), np.asarray(targets, dtype=object)


def fit_detector(
    images: list[np.ndarray] | np.ndarray,
    boxes: list[np.ndarray],
    labels: list[tuple[str, ...]],
    classes: tuple[str, ...],
    seed: int = 0,
    c: float = 1.0,
    max_iter: int = 300,
    windows: list[SceneWindows] | None = None,
) -> Detector:
    """Train the window classifier (multinomial logistic regression) on labelled scenes.

    Examples
    --------
    >>> from demo.detection.data import LABELS, make_scenes
    >>> scenes = make_scenes(20, seed=0)
    >>> detector = fit_detector(scenes.images, list(scenes.boxes), list(scenes.labels), LABELS)
    >>> detector.classes == LABELS
    True
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    features, targets = training_set(images, boxes, labels, seed=seed, windows=windows)
    classifier = LogisticRegression(C=float(c), max_iter=int(max_iter))
    # one BLAS thread: on a shared 2-core machine OpenBLAS's two threads made this fit ten times slower
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(features, targets.astype(str))
    return Detector(classifier=classifier, classes=tuple(classes))


def class_probabilities(detector: Detector, features: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Window probabilities, one column per object class (``detector.classes``), background left out.

    A multinomial model is scored as ``softmax(features @ coef.T + intercept)`` in the features'
    own dtype, ``chunk`` rows at a time (what ``predict_proba`` computes, without its float64 copy of
    every window); a two-class model goes through ``predict_proba``.
    """
    out = np.zeros((len(features), len(detector.classes)))
    if len(features) == 0:
        return out
    classifier = detector.classifier
    coef = np.asarray(classifier.coef_)
    if coef.shape[0] > 1:
        dtype = features.dtype if features.dtype in (np.float32, np.float64) else np.float64
        weights = coef.T.astype(dtype)
        intercept = np.asarray(classifier.intercept_, dtype=dtype)
        raw = np.empty((len(features), coef.shape[0]))
        for start in range(0, len(features), chunk):
            logits = features[start : start + chunk] @ weights + intercept
            logits -= logits.max(axis=1, keepdims=True)
            np.exp(logits, out=logits)
            raw[start : start + chunk] = logits / logits.sum(axis=1, keepdims=True)
    else:
        raw = classifier.predict_proba(features)
    column = {name: j for j, name in enumerate(detector.classes)}
    for k, name in enumerate(classifier.classes_):
        if str(name) in column:
            out[:, column[str(name)]] = raw[:, k]
    return out


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS, highest score first.

    Examples
    --------
    >>> non_max_suppression(np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]]),
    ...                     np.array([0.9, 0.8, 0.7])).tolist()
    [0, 2]
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    if len(order) == 0:
        return np.asarray(keep, dtype=int)
    overlaps = box_iou(boxes[order], boxes[order])
    suppressed = np.zeros(len(order), dtype=bool)
    for rank in range(len(order)):
        if suppressed[rank]:
            continue
        keep.append(int(order[rank]))
        suppressed |= overlaps[rank] > iou_threshold
    return np.asarray(keep, dtype=int)


def detect(
    detector: Detector,
    image: np.ndarray | None,
    min_confidence: float = MIN_CONFIDENCE,
    windows: SceneWindows | None = None,
) -> Detections:
    """Detect objects in one scene: windows → class probabilities → per-class NMS → top ``MAX_DETECTIONS``.

    ``windows`` (from :func:`scene_windows`) skips recomputing the scene's window features; ``image``
    may then be ``None``.

    Examples
    --------
    >>> from demo.detection.data import LABELS, make_scenes
    >>> scenes = make_scenes(20, seed=0)
    >>> detector = fit_detector(scenes.images, list(scenes.boxes), list(scenes.labels), LABELS)
    >>> found = detect(detector, scenes.images[1])
    >>> found.boxes.shape[1], len(found.labels) == len(found.confidences) == len(found.class_scores)
    (4, True)
    """
    if windows is None:
        features, boxes = sliding_windows(image)
    else:
        features, boxes = windows.features, windows.boxes
    return detections_from_probabilities(
        detector.classes, boxes, class_probabilities(detector, features), min_confidence
    )


def detections_from_probabilities(
    classes: tuple[str, ...], boxes: np.ndarray, probabilities: np.ndarray, min_confidence: float = MIN_CONFIDENCE
) -> Detections:
    """Windows' class probabilities → per-class NMS, then cross-class NMS → top ``MAX_DETECTIONS``.

    Examples
    --------
    >>> found = detections_from_probabilities(("a", "b"), np.array([[0, 0, 10, 10], [1, 0, 11, 10]]),
    ...                                       np.array([[0.9, 0.05], [0.2, 0.7]]))
    >>> found.labels, found.confidences.tolist()
    (('a',), [0.9])
    """
    best = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, dtype=int)
    confidence = probabilities[np.arange(len(best)), best] if len(best) else np.zeros(0)
    kept: list[int] = []
    for k in np.unique(best[confidence >= min_confidence]):
        members = np.flatnonzero((best == k) & (confidence >= min_confidence))
        kept.extend(members[non_max_suppression(boxes[members], confidence[members])].tolist())
    kept_array = np.asarray(kept, dtype=int)
    if len(kept_array):  # across classes too: one digit, one box
        kept_array = kept_array[non_max_suppression(boxes[kept_array], confidence[kept_array], 0.5)]
    kept_array = kept_array[np.argsort(-confidence[kept_array], kind="stable")][:MAX_DETECTIONS]
    return Detections(
        boxes=boxes[kept_array],
        labels=tuple(classes[k] for k in best[kept_array]),
        confidences=confidence[kept_array],
        class_scores=probabilities[kept_array],
    )
