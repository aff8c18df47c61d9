"""The demo's data: scikit-learn's bundled digits as PNG images, and the pool plan.

Pure functions, no platform: load the 1,797 8×8 digit images that ship inside
scikit-learn (no download), upscale them to small PNGs, turn PNG pixels back into the
classifier's features, and decide (from a seed) which items form the fixed test set,
the initial labelled pool and the unlabelled pool.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

LABELS = tuple(str(d) for d in range(10))
N_DIGITS = 1797
IMAGE_SCALE = 4  # 8x8 -> 32x32 pixels


@dataclass(frozen=True)
class DigitsData:
    """The digits as uint8 images (upscaled) with their labels, in a seeded order.

    Attributes
    ----------
    images : numpy.ndarray of uint8, shape (n, 8 * scale, 8 * scale)
    labels : tuple of str
        Ground-truth label of each image ("0".."9").
    names : tuple of str
        File name of each item, e.g. ``"digit_0007.png"`` (index in sklearn's order).
    """

    images: np.ndarray
    labels: tuple[str, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class PoolPlan:
    """Which positions of :class:`DigitsData` are test, initially labelled, or unlabelled.

    The three index arrays are disjoint and cover ``range(n_items)``.
    """

    test: np.ndarray
    initial: np.ndarray
    pool: np.ndarray


def load_digits_images(n_items: int = N_DIGITS, seed: int = 0, scale: int = IMAGE_SCALE) -> DigitsData:
    """Load ``n_items`` of scikit-learn's bundled digits as upscaled uint8 images.

    Items are taken in a seeded random order, so a reduced run still covers all ten
    labels. Pixel values 0..16 are mapped to 0..255 (white digit on black).

    Parameters
    ----------
    n_items : int
        How many of the 1,797 digits to use (at least 50).
    seed : int
        Seed of the order in which digits are taken.
    scale : int
        Nearest-neighbour upscaling factor (4 gives 32×32 images).

    Examples
    --------
    >>> data = load_digits_images(60, seed=1)
    >>> data.images.shape, sorted(set(data.labels)) == list(LABELS)
    ((60, 32, 32), True)
    """
    from sklearn.datasets import load_digits

    if isinstance(n_items, bool) or not isinstance(n_items, int) or not 50 <= n_items <= N_DIGITS:
        raise ValueError(f"items: {n_items!r} is not an integer in [50, {N_DIGITS}]; example: --items 300")
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))[:n_items]
    small = np.rint(digits.images[order] * (255.0 / 16.0)).astype(np.uint8)
    images = np.kron(small, np.ones((1, scale, scale), dtype=np.uint8))
    labels = tuple(str(int(t)) for t in digits.target[order])
    names = tuple(f"digit_{int(i):04d}.png" for i in order)
    return DigitsData(images=images, labels=labels, names=names)


def encode_png(image: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as PNG bytes (grayscale).

    Examples
    --------
    >>> encode_png(np.zeros((4, 4), dtype=np.uint8))[:4]
    b'\\x89PNG'
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes into a 2-D uint8 array (grayscale).

    Examples
    --------
    >>> decode_png(encode_png(np.full((2, 2), 7, dtype=np.uint8))).tolist()
    [[7, 7], [7, 7]]
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L"), dtype=np.uint8)


def image_features(images: np.ndarray | list[np.ndarray], size: int = 8) -> np.ndarray:
    """Classifier features: each image block-averaged down to ``size``×``size``, scaled to [0, 1].

    Parameters
    ----------
    images : array-like of shape (n, H, W) with H and W multiples of ``size``
        (or a list of 2-D arrays of the same shape).

    Returns
    -------
    numpy.ndarray of float, shape (n, size * size)

    Examples
    --------
    >>> image_features(np.full((1, 32, 32), 255, dtype=np.uint8)).shape
    (1, 64)
    """
    stack = np.asarray(images, dtype=float)
    if stack.ndim != 3 or stack.shape[1] % size or stack.shape[2] % size:
        raise ValueError(f"images: expected shape (n, H, W) with H, W multiples of {size}, got {stack.shape}")
    n, height, width = stack.shape
    blocks = stack.reshape(n, size, height // size, size, width // size).mean(axis=(2, 4))
    return blocks.reshape(n, size * size) / 255.0


def plan_pools(n_items: int, seed: int, test_fraction: float = 0.2, initial_size: int = 100) -> PoolPlan:
    """Split positions ``0..n_items-1`` into a fixed test set, an initial labelled pool and the rest.

    The test set is held out once, before any model exists, and shared by every model
    and every selection strategy, so their scores are comparable.

    Examples
    --------
    >>> plan = plan_pools(300, seed=0)
    >>> len(plan.test), len(plan.initial), len(plan.pool)
    (60, 100, 140)
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: {test_fraction!r} must lie in (0, 1); example: 0.2")
    n_test = max(1, int(round(n_items * test_fraction)))
    n_initial = min(initial_size, n_items - n_test - 1)
    if n_initial < 10:
        raise ValueError(f"items: {n_items} leaves only {n_initial} initial items; use --items 50 or more")
    order = np.random.default_rng([seed, 1]).permutation(n_items)
    return PoolPlan(
        test=np.sort(order[:n_test]),
        initial=np.sort(order[n_test : n_test + n_initial]),
        pool=np.sort(order[n_test + n_initial :]),
    )
