"""``python main.py demo``: the Active Learning pipeline template, installed and run round after
round on the embedded local platform, with margin selection against a random baseline.

``demo/__main__.py`` (also ``python -m demo``) is the entry and ``demo.cli`` its options;
``demo.run`` drives the rounds, ``demo.pipeline_runner`` walks the template, ``demo.adapter`` is
the model, ``demo.report`` the report. ``demo.isolation`` stays free of dtlpy so it can run
before dtlpy is imported. What the demo does: docs/demo.md.
"""
