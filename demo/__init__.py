"""``python main.py demo``: a real active-learning round on the embedded local platform.

The demo uploads scikit-learn's bundled digits (1,797 8×8 images, no download) as PNG
items to ``emulator.LocalPlatform``, trains a scikit-learn classifier wrapped in a
``dl.BaseModelAdapter`` (``demo/adapter.py``), selects the most informative unlabelled
items by margin uncertainty (``nodes/uncertainty.py``), reveals their labels, and runs
the three nodes through ``main.ServiceRunner`` exactly as a pipeline does: Model Data
Split, Create New Model, and (after training and evaluating both models on the same test
subset) Compare Models. A random-selection strategy with the same label budget runs
alongside. Output: a table on the terminal and ``report.md``, ``pr_curves.png``,
``learning_curve.png`` in ``--out``.

``demo/__main__.py`` (also ``python -m demo``) is the entry; ``demo.cli`` holds its options.
``demo.isolation`` must stay free of dtlpy so it can run before dtlpy is imported.
"""
