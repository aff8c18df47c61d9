"""Multi-object detection scenes generated from scikit-learn's bundled digits (no download).

Each scene is a grey ``canvas`` × ``canvas`` image with 0–6 digits pasted at random positions and
sizes on a noisy, cluttered background; the digit is the label and the pasted square the exact box.
The digits of a scene come from one of two disjoint halves of the 1,797 source images
(``source="train"`` or ``"test"``), so a fixed test set never shows a digit image the detector
was trained on. Everything is drawn from ``numpy.random.default_rng(seed)``: the same arguments
give the same scenes, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LABELS = tuple(str(d) for d in range(10))
CANVAS = 96
MIN_SIZE, MAX_SIZE = 12, 32
MAX_OBJECTS = 6
EMPTY_FRACTION = 0.1  # scenes with no object at all: what a detector must learn to leave alone
MAX_OVERLAP = 0.25  # a new digit may cover another's box up to this share of the smaller box
PLACEMENT_TRIES = 30


@dataclass(frozen=True)
class DetectionScenes:
    """Generated scenes and their ground truth.

    Attributes
    ----------
    images : numpy.ndarray of uint8, shape (n, canvas, canvas)
    boxes : tuple of numpy.ndarray of float, shape (k_i, 4)
        Per scene, ``[left, top, right, bottom]`` in pixels (right/bottom exclusive), inside the canvas.
    labels : tuple of tuple of str
        Per scene, the digit of each box ("0".."9").
    names : tuple of str
        File name of each scene, e.g. ``"scene_train_0007.png"``.
    """

    images: np.ndarray
    boxes: tuple[np.ndarray, ...]
    labels: tuple[tuple[str, ...], ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def n_objects(self) -> int:
        """Total number of boxes over all scenes."""
        return sum(len(b) for b in self.boxes)


def _source_digits(source: str) -> tuple[np.ndarray, np.ndarray]:
    """The half of sklearn's digits a source draws from: images in [0, 1] and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    half = np.random.default_rng(12345).permutation(len(digits.target))  # fixed: the halves never move
    cut = len(half) // 2
    chosen = np.sort(half[:cut] if source == "train" else half[cut:])
    return digits.images[chosen] / 16.0, digits.target[chosen]


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a float image in [0, 1] to ``size`` × ``size``."""
    from PIL import Image

    pil = Image.fromarray(np.asarray(image * 255.0, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size, size), Image.BILINEAR), dtype=np.float64) / 255.0


def _covered_share(box: tuple[int, int, int, int], others: list[tuple[int, int, int, int]]) -> float:
    """Largest intersection of ``box`` with one of ``others``, as a share of the smaller of the two."""
    share = 0.0
    for other in others:
        width = min(box[2], other[2]) - max(box[0], other[0])
        height = min(box[3], other[3]) - max(box[1], other[1])
        if width > 0 and height > 0:
            smaller = min((box[2] - box[0]) ** 2, (other[2] - other[0]) ** 2)  # squares
            share = max(share, width * height / smaller)
    return share


def _background(rng: np.random.Generator, canvas: int) -> np.ndarray:
    """Noise plus clutter: a soft gradient, a few faint strokes and blobs that are not digits."""
    y, x = np.mgrid[0:canvas, 0:canvas] / canvas
    angle = rng.uniform(0, 2 * np.pi)
    image = 0.08 + 0.08 * (np.cos(angle) * x + np.sin(angle) * y)
    for _ in range(int(rng.integers(1, 5))):  # faint straight strokes
        x0, y0, x1, y1 = rng.uniform(0, canvas, 4)
        t = np.linspace(0, 1, 4 * canvas)
        xs = np.clip((x0 + t * (x1 - x0)).astype(int), 0, canvas - 1)
        ys = np.clip((y0 + t * (y1 - y0)).astype(int), 0, canvas - 1)
        image[ys, xs] += rng.uniform(0.15, 0.35)
    for _ in range(int(rng.integers(0, 4))):  # faint blobs
        cx, cy = rng.uniform(0, canvas, 2)
        radius = rng.uniform(2, 6)
        image += rng.uniform(0.1, 0.3) * np.exp(-((x * canvas - cx) ** 2 + (y * canvas - cy) ** 2) / (2 * radius**2))
    image += rng.normal(0.0, 0.05, size=image.shape)
    return image


def make_scenes(
    n_scenes: int,
    seed: int = 0,
    source: str = "train",
    canvas: int = CANVAS,
    min_size: int = MIN_SIZE,
    max_size: int = MAX_SIZE,
    max_objects: int = MAX_OBJECTS,
    empty_fraction: float = EMPTY_FRACTION,
) -> DetectionScenes:
    """Generate ``n_scenes`` deterministic multi-digit scenes with exact boxes.

    Parameters
    ----------
    n_scenes : int
        How many scenes (at least 1).
    seed : int
        Seed of every random choice.
    source : {"train", "test"}
        Which disjoint half of the source digit images the scenes use.
    canvas : int
        Side of the square image in pixels.
    min_size, max_size : int
        Range of the pasted digits' side in pixels (inclusive).
    max_objects : int
        At most this many digits per scene (at least 1 in a non-empty scene).
    empty_fraction : float
        Share of scenes with no digit at all, in [0, 1).

    Returns
    -------
    DetectionScenes

    Examples
    --------
    >>> scenes = make_scenes(5, seed=1)
    >>> scenes.images.shape, scenes.images.dtype.name
    ((5, 96, 96), 'uint8')
    >>> all(((b[:, :2] >= 0) & (b[:, 2:] <= 96)).all() for b in scenes.boxes)
    True
    """
    if isinstance(n_scenes, bool) or not isinstance(n_scenes, int) or n_scenes < 1:
        raise ValueError(f"n_scenes: {n_scenes!r} is not a positive integer; example: 200")
    if source not in ("train", "test"):
        raise ValueError(f"source: {source!r} is not 'train' or 'test'")
    if not 4 <= min_size <= max_size <= canvas:
        raise ValueError(f"min_size, max_size: {min_size}, {max_size} must satisfy 4 <= min <= max <= {canvas}")
    if not 0 <= empty_fraction < 1:
        raise ValueError(f"empty_fraction: {empty_fraction!r} must lie in [0, 1)")
    digits, targets = _source_digits(source)
    rng = np.random.default_rng([seed, 0 if source == "train" else 1])
    images = np.empty((n_scenes, canvas, canvas), dtype=np.uint8)
    all_boxes, all_labels, names = [], [], []
    for index in range(n_scenes):
        image = _background(rng, canvas)
        n_objects = 0 if rng.random() < empty_fraction else int(rng.integers(1, max_objects + 1))
        boxes, labels = [], []
        for _ in range(n_objects):
            pick = int(rng.integers(len(targets)))
            size = int(rng.integers(min_size, max_size + 1))
            for _ in range(PLACEMENT_TRIES):  # some overlap, never a digit hidden under another
                left, top = (int(v) for v in rng.integers(0, canvas - size + 1, 2))
                if _covered_share((left, top, left + size, top + size), boxes) <= MAX_OVERLAP:
                    break
            else:
                continue
            patch = _resize(digits[pick], size) * rng.uniform(0.6, 1.0)
            region = image[top : top + size, left : left + size]
            np.maximum(region, patch, out=region)  # later digits may overlap earlier ones
            boxes.append((left, top, left + size, top + size))
            labels.append(str(int(targets[pick])))
        images[index] = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
        all_boxes.append(np.asarray(boxes, dtype=float).reshape(-1, 4))
        all_labels.append(tuple(labels))
        names.append(f"scene_{source}_{index:04d}.png")
    return DetectionScenes(images=images, boxes=tuple(all_boxes), labels=tuple(all_labels), names=tuple(names))
