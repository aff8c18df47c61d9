"""One source for every benchmark figure (issue 23): a measured number in the README's Benchmarks
section must also stand in docs/benchmarks.md, where the benchmarks write or state their runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# measured figures: decimals (accuracies, ratios), memory and times; counts of seeds or items are
# the benchmarks' settings, not measurements
FIGURE = re.compile(r"\d[\d,]*(?:\.\d+)?\s*s CPU|\d[\d,]*(?:\.\d+)?\s*(?:MiB|GiB|ms)\b|\d[\d,]*\.\d+\s*(?:×|x\b)?")


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else len(text)]


def test_readme_benchmark_figures_come_from_docs_benchmarks():
    readme = _section((ROOT / "README.md").read_text(encoding="utf-8"), "## Benchmarks")
    docs = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    figures = sorted({match.group(0).strip() for match in FIGURE.finditer(readme)})
    assert figures, "the README's Benchmarks section names no figure: the check would prove nothing"
    missing = [figure for figure in figures if figure not in docs]
    assert missing == [], f"README figures not in docs/benchmarks.md: {missing}"


def test_the_figure_pattern_catches_what_it_must():
    found = [m.group(0).strip() for m in FIGURE.finditer("0.968 vs 0.947, 24.7× faster, 212 MiB, 17.9 s CPU, 20/20")]
    assert found == ["0.968", "0.947", "24.7×", "212 MiB", "17.9 s CPU"]
