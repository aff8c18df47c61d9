"""The Active Learning app's nodes: one package per pipeline node, pure logic first, a thin
dtlpy edge last.

``data_split``, ``create_new_model``, ``compare_models`` and ``select_for_labeling`` each read in
the order data flows (config → decision → ``node.py`` edge → ``cli.py``); ``metrics`` is the
single source of IoU / precision-recall / AP; ``common`` holds what every node shares (DQL checks,
paging, packaged defaults, config bounds). ``main.py``'s ``ServiceRunner`` only adapts platform
entities to these packages.
"""
