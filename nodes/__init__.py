"""The Active Learning app's nodes: pure logic first, thin dtlpy edges second.

One module per pipeline node (``data_split``, ``create_new_model``, ``compare_models``)
plus ``metrics`` (the single source of IoU / precision-recall / AP). ``main.py`` holds the
``ServiceRunner`` that the Dataloop runner calls; it only adapts platform entities to the
functions defined here.
"""
