"""Regenerate the complete dependency locks from the direct pins (``python tools/lock_requirements.py``).

``requirements.txt`` / ``requirements-dev.txt`` pin the direct dependencies; pip resolves every
transitive one (``pip install --dry-run --ignore-installed --report``, nothing is installed) and
this writes each resolution as ``name==version`` lines to ``requirements.lock`` /
``requirements-dev.lock``. The requirement files constrain themselves to their lock (``-c``), so
``pip install -r requirements-dev.txt`` installs exactly the locked set; the service image installs
``requirements.lock``. The runtime lock is resolved first and constrains the dev resolution, so
the two agree on every shared package.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = (("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock"))
HEADER = (
    "# Complete lock of every transitive dependency of {source} (generated, do not edit):\n"
    "#   python tools/lock_requirements.py\n"
    "# Resolved for Python {python} on {platform}.\n"
)


def resolved(requirements: Path, constraints: list[Path]) -> list[tuple[str, str]]:
    """``(name, version)`` of every package pip installs for ``requirements`` (sorted by name).

    The file's own ``-c <its lock>`` line is left out (a new pin must not be held to the old
    lock); the locks in ``constraints`` (resolved before) are applied.
    """
    own_lock = f"-c {requirements.name.replace('.txt', '.lock')}"
    text = "".join(
        line for line in requirements.read_text(encoding="utf-8").splitlines(keepends=True) if line.strip() != own_lock
    )
    source = requirements.with_name(f".unlocked-{requirements.name}")  # next to it: relative -r / -c still work
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        command += ["--report", str(report), "-r", str(source)]
        for constraint in constraints:
            command += ["-c", str(constraint)]
        try:
            source.write_text(text, encoding="utf-8")
            subprocess.run(command, check=True, cwd=ROOT)
        finally:
            source.unlink(missing_ok=True)
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    pins = {(i["metadata"]["name"].lower().replace("_", "-"), i["metadata"]["version"]) for i in installs}
    return sorted(pins)


def main() -> int:
    done: list[Path] = []
    for source, lock in LOCKS:
        pins = resolved(ROOT / source, done)
        header = HEADER.format(source=source, python=sys.version.split()[0], platform=sys.platform)
        (ROOT / lock).write_text(header + "".join(f"{name}=={version}\n" for name, version in pins), encoding="utf-8")
        done.append(ROOT / lock)
        print(f"{lock}: {len(pins)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
