"""Draw assets/active-learning-pipeline.png: the Active Learning pipeline template."""

# Run: .venv/bin/python tools/draw_pipeline_diagram.py  (writes assets/active-learning-pipeline.png)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

OURS = "#2f6fde"
PLATFORM = "#8a94a6"
fig, ax = plt.subplots(figsize=(13, 5.2), dpi=110)
ax.set_xlim(0, 13)
ax.set_ylim(0, 5.2)
ax.axis("off")


def box(x, y, text, color, w=1.7, h=0.8):
    ax.add_patch(
        FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04,rounding_size=0.12", fc=color, ec="none")
    )
    ax.text(x, y, text, ha="center", va="center", color="white", fontsize=10, fontweight="bold")
    return (x, y, w, h)


def arrow(a, b, label=None, style="-|>"):
    (x1, y1, w1, h1), (x2, y2, w2, h2) = a, b
    if abs(y1 - y2) < 1e-6:
        start, end = (x1 + w1 / 2, y1), (x2 - w2 / 2, y2)
    elif abs(x1 - x2) < 1e-6:
        start, end = (x1, y1 - h1 / 2 if y2 < y1 else y1 + h1 / 2), (x2, y2 + h2 / 2 if y2 < y1 else y2 - h2 / 2)
    else:
        start, end = (x1 + w1 / 2, y1), (x2 - w2 / 2, y2)
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle=style, color="#333", lw=1.4))
    if label:
        ax.text(
            (start[0] + end[0]) / 2,
            (start[1] + end[1]) / 2 + 0.55,
            label,
            ha="center",
            fontsize=8.5,
            color="#333",
            style="italic",
        )


ax.text(0.2, 4.9, "Data loop", fontsize=11, fontweight="bold", color="#333")
y = 4.2
dataset = box(1.1, y, "Dataset", PLATFORM)
predict = box(3.3, y, "Predict", PLATFORM)
label = box(5.5, y, "Labeling", PLATFORM)
review = box(7.7, y, "Review", PLATFORM)
split = box(9.9, y, "Model Data\nSplit", OURS)
dataset2 = box(12.0, y, "Dataset", PLATFORM, w=1.4)
arrow(dataset, predict, "unlabelled items")
arrow(predict, label, "uncertain items")
arrow(label, review)
arrow(review, split, "approved")
arrow(split, dataset2, "train / val / test")

ax.text(0.2, 2.55, "Model loop", fontsize=11, fontweight="bold", color="#333")
y = 1.8
create = box(1.1, y, "Create New\nModel", OURS)
train = box(3.3, y, "Train", PLATFORM)
ev1 = box(5.5, y + 0.55, "Evaluate\n(new)", PLATFORM, h=0.75)
ev2 = box(5.5, y - 0.55, "Evaluate\n(previous)", PLATFORM, h=0.75)
compare = box(8.0, y, "Compare\nModels", OURS)
update = box(10.6, y + 0.55, "update model", "#1f9d55", w=1.9, h=0.6)
discard = box(10.6, y - 0.55, "discard", "#c0392b", w=1.9, h=0.6)
arrow(create, train)
ax.text(2.2, 2.02, "new_model", ha="center", fontsize=8.5, style="italic", color="#333")
arrow(train, ev1)
ax.annotate(
    "",
    xy=(ev2[0] - ev2[2] / 2, ev2[1]),
    xytext=(create[0], create[1] - create[3] / 2),
    arrowprops=dict(arrowstyle="-|>", color="#333", lw=1.4, connectionstyle="angle,angleA=-90,angleB=180"),
)
arrow(ev1, compare)
arrow(ev2, compare)
arrow(compare, update)
arrow(compare, discard)
ax.text(3.3, 1.05, "base_model", ha="center", fontsize=8.5, style="italic", color="#333")
ax.add_patch(FancyBboxPatch((0.25, 0.08), 0.25, 0.2, boxstyle="square,pad=0", fc=OURS, ec="none"))
ax.text(0.6, 0.18, "node installed by this app", va="center", fontsize=9)
ax.add_patch(FancyBboxPatch((3.0, 0.08), 0.25, 0.2, boxstyle="square,pad=0", fc=PLATFORM, ec="none"))
ax.text(3.35, 0.18, "Dataloop built-in node", va="center", fontsize=9)
fig.tight_layout()
fig.savefig("assets/active-learning-pipeline.png")
