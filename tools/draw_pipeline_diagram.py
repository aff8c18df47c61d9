"""Draw assets/active-learning-pipeline.png from the pipeline template itself.

Nodes, their canvas positions (``metadata.position``), connections with their actions, the start
nodes' triggers and the variables are all read from
``pipeline_configs/active_learning_pipeline.json``, so the picture cannot disagree with the
template.

Run: ``.venv/bin/python tools/draw_pipeline_diagram.py`` (writes assets/active-learning-pipeline.png)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "pipeline_configs" / "active_learning_pipeline.json"
OUTPUT = ROOT / "assets" / "active-learning-pipeline.png"

COLORS = {  # fill colour per node type; custom nodes are this app's
    "custom": "#2f6fde",
    "ml": "#7b5ea7",
    "task": "#d9822b",
    "storage": "#5b6b80",
    "updateVariable": "#1f9d55",
}
KIND_LABELS = {
    "custom": "node of this app (active-learning)",
    "ml": "model node (predict / train / evaluate)",
    "task": "labeling / review task",
    "storage": "dataset node",
    "updateVariable": "update variable",
}
BOX_W, BOX_H = 170, 78


def diagram_elements(template: Mapping) -> tuple[list[dict], list[dict]]:
    """Boxes and arrows of the template: what the picture shows, as plain data.

    Each box: ``name``, ``kind`` (node type), ``x``, ``y`` (canvas position), ``trigger`` (text
    or None), ``ends`` (output actions no connection follows: the item's run ends there). Each arrow: ``src`` / ``tgt`` (node names), ``src_port`` / ``tgt_port``, ``label``
    (the connection's action or None).

    Examples
    --------
    >>> boxes, arrows = diagram_elements(json.loads(TEMPLATE.read_text()))
    >>> next(a for a in arrows if a["label"] == "label")["tgt"]
    'Labeling'
    """
    names = {n["id"]: n["name"] for n in template["nodes"]}
    ports = {p["portId"]: p["name"] for n in template["nodes"] for p in n["inputs"] + n["outputs"]}
    triggers = {}
    for start in template.get("startNodes", []):
        trigger = start.get("trigger") or {}
        spec = trigger.get("spec") or {}
        if trigger.get("type") == "Event":
            text = f"trigger: {spec.get('resource', '')} {'/'.join(spec.get('actions', []))}".lower()
        elif trigger.get("type") == "Cron":
            text = f"trigger: cron '{spec.get('cron')}'"
        else:
            text = "start"
        triggers[start["nodeId"]] = text
    used = {(c["src"]["portId"], c.get("action")) for c in template["connections"]}
    boxes = [
        {
            "name": n["name"],
            "kind": n["type"],
            "x": float(n["metadata"]["position"]["x"]),
            "y": float(n["metadata"]["position"]["y"]),
            "trigger": triggers.get(n["id"]),
            "ends": [
                action
                for port in n["outputs"]
                for action in port.get("actions") or []
                if (port["portId"], action) not in used
            ],
        }
        for n in template["nodes"]
    ]
    arrows = [
        {
            "src": names[c["src"]["nodeId"]],
            "tgt": names[c["tgt"]["nodeId"]],
            "src_port": ports.get(c["src"]["portId"]),
            "tgt_port": ports.get(c["tgt"]["portId"]),
            "label": c.get("action"),
        }
        for c in template["connections"]
    ]
    return boxes, arrows


def _edge_point(box: Mapping, toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from the box centre toward ``toward`` leaves the box."""
    dx, dy = toward[0] - box["x"], toward[1] - box["y"]
    if dx == 0 and dy == 0:
        return box["x"], box["y"]
    scale = min(
        (BOX_W / 2) / abs(dx) if dx else float("inf"),
        (BOX_H / 2) / abs(dy) if dy else float("inf"),
    )
    return box["x"] + dx * scale, box["y"] + dy * scale


def draw(template: Mapping, output: Path, source_name: str) -> Path:
    """Render the template to ``output`` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch, Patch

    boxes, arrows = diagram_elements(template)
    by_name = {b["name"]: b for b in boxes}
    xs, ys = [b["x"] for b in boxes], [b["y"] for b in boxes]
    x0, x1 = min(xs) - BOX_W, max(xs) + BOX_W
    y0, y1 = min(ys) - 1.9 * BOX_H, max(ys) + 1.6 * BOX_H
    width = 16.0
    fig, ax = plt.subplots(figsize=(width, width * (y1 - y0) / (x1 - x0)), dpi=110)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # canvas y grows downward
    ax.axis("off")

    # arrows first (under the boxes); connections between the same two ports share one arrow
    grouped: dict[tuple, list[str]] = defaultdict(list)
    for arrow in arrows:
        key = (arrow["src"], arrow["tgt"], arrow["src_port"], arrow["tgt_port"])
        grouped[key].append(arrow["label"])
    for (src, tgt, src_port, tgt_port), labels in grouped.items():
        a, b = by_name[src], by_name[tgt]
        start, end = _edge_point(a, (b["x"], b["y"])), _edge_point(b, (a["x"], a["y"]))
        ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color="#333", lw=1.5))
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        actions = " / ".join(label for label in labels if label)
        ports = "" if src_port == tgt_port == "item" else f"{src_port} \u2192 {tgt_port}"
        text = "\n".join(t for t in (actions, ports) if t)
        if text:
            # a horizontal arrow is short: its label goes above the row of boxes, clear of them
            horizontal = abs(a["y"] - b["y"]) < 1
            ax.text(
                mid[0],
                mid[1] - BOX_H / 2 - 6 if horizontal else mid[1] + 30,  # a sloped arrow: label below it
                text,
                ha="center",
                va="bottom" if horizontal else "top",
                fontsize=9,
                style="italic" if actions else "normal",
                color="#b03a2e" if actions else "#444",
                fontweight="bold" if actions else "normal",
            )

    for box in boxes:
        ax.add_patch(
            FancyBboxPatch(
                (box["x"] - BOX_W / 2, box["y"] - BOX_H / 2),
                BOX_W,
                BOX_H,
                boxstyle="round,pad=2,rounding_size=12",
                fc=COLORS.get(box["kind"], "#999"),
                ec="#222" if box["trigger"] else "none",
                lw=2 if box["trigger"] else 0,
            )
        )
        name = box["name"].replace(" ", "\n", 1) if len(box["name"]) > 12 else box["name"]
        ax.text(box["x"], box["y"], name, ha="center", va="center", color="white", fontsize=10, fontweight="bold")
        if box["ends"]:
            ends = ", ".join(box["ends"])
            below = box["y"] + BOX_H / 2 + 6
            ax.text(box["x"], below, f"{ends}: ends", ha="center", va="top", fontsize=8.5, color="#777", style="italic")
        if box["trigger"]:
            below = box["y"] + BOX_H / 2 + 8
            ax.text(box["x"], below, box["trigger"], ha="center", va="top", fontsize=8.5, fontweight="bold")

    # variables and legend along the bottom
    variables = [f"{v['name']} ({v['type']})" for v in template.get("variables", [])]
    ax.text(x0 + 10, y1 - 14, "Variables: " + ", ".join(variables), fontsize=8.5, color="#333", va="bottom", wrap=True)
    kinds = [k for k in COLORS if any(b["kind"] == k for b in boxes)]
    ax.legend(
        handles=[Patch(color=COLORS[k], label=KIND_LABELS[k]) for k in kinds],
        loc="upper right",
        fontsize=8.5,
        frameon=False,
        ncol=len(kinds),
    )
    ax.set_title(
        f"{template.get('name', 'Pipeline template')}  \u2014  drawn from {source_name}", fontsize=11, loc="left"
    )
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output)
    plt.close(fig)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="pipeline template (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="PNG to write (default: %(default)s)")
    args = parser.parse_args(argv)
    template = json.loads(args.template.read_text(encoding="utf-8"))
    source = args.template.relative_to(ROOT) if args.template.is_relative_to(ROOT) else args.template
    path = draw(template, args.output, str(source))
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
