"""``python main.py demo``: the Active Learning pipeline template, installed on the embedded local
platform and run by it round after round, with margin selection against a random baseline.

``demo/__main__.py`` (also ``python -m demo``) is the entry and ``demo.cli`` its options;
``demo.run`` / ``demo.session`` drive the run, ``demo.tasks`` names the pluggable task
(``demo.classification`` by default), ``demo.annotator`` works the tasks, ``demo.watch`` reads
back what the platform recorded, ``demo.report`` writes the report. ``demo.isolation`` stays free
of dtlpy at import so it can run before dtlpy is imported. What the demo does: docs/demo.md.
"""
