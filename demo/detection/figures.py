"""Pictures of the detection demo: test scenes with their true boxes and each model's predicted boxes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def draw_scenes(
    images: Sequence[np.ndarray],
    truth: Sequence[Sequence[tuple[str, Sequence[float]]]],
    models: Mapping[str, Sequence[Sequence[Mapping]]],
    path: str,
    min_confidence: float = 0.5,
    subtitle: str = "",
) -> str:
    """Save a grid to ``path``: one row per scene; a column of true boxes (green), then one column
    per model with its boxes of confidence ≥ ``min_confidence`` (red, labelled with label and
    confidence). Returns ``path``.

    Examples
    --------
    >>> import tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "scenes.png")
    >>> record = {"label": "3", "confidence": 0.9, "left": 1, "top": 1, "right": 9, "bottom": 9}
    >>> draw_scenes([np.zeros((16, 16), np.uint8)], [[("3", [1, 1, 9, 9])]], {"m": [[record]]}, out) == out
    True
    >>> import shutil; shutil.rmtree(os.path.dirname(out))
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    columns = ["ground truth", *models]
    rows = max(1, len(images))
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.6 * len(columns), 2.6 * rows), squeeze=False)
    for r, image in enumerate(images):
        panels = [[(label, box, None) for label, box in truth[r]]]
        panels += [
            [
                (d["label"], (d["left"], d["top"], d["right"], d["bottom"]), d["confidence"])
                for d in found[r]
                if d["confidence"] >= min_confidence
            ]
            for found in models.values()
        ]
        for c, boxes in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            colour = "lime" if c == 0 else "red"
            for label, (left, top, right, bottom), confidence in boxes:
                ax.add_patch(
                    Rectangle((left, top), right - left, bottom - top, fill=False, edgecolor=colour, linewidth=1.2)
                )
                text = label if confidence is None else f"{label} {confidence:.2f}"
                ax.text(left, top - 1, text, color=colour, fontsize=6, va="bottom")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
    title = f"test scenes: true boxes and predicted boxes (confidence ≥ {min_confidence:g})"
    fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
