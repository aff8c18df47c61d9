"""The demo's model adapter on the local platform: its predictions are replaced, never doubled,
and dtlpy's per-item clean-up is skipped only when there is nothing of the model to clean up.
"""

from __future__ import annotations

import io

import dtlpy as dl
import numpy as np

from demo.adapter import TOP_K, DigitsAdapter, fit_classifier
from demo.data import LABELS, encode_png, image_features, load_digits_images
from emulator import make_labels


def _model_predictions(dataset: dl.Dataset, model_name: str) -> dict[str, int]:
    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    filters.add(field="metadata.user.model.name", values=model_name)
    counts: dict[str, int] = {}
    for page in dataset.annotations.list(filters=filters):
        for annotation in page:
            counts[annotation.item_id] = counts.get(annotation.item_id, 0) + 1
    return counts


def test_predict_items_replaces_predictions_and_skips_the_clean_up_only_when_there_is_none(platform, project):
    dataset = project.datasets.create(dataset_name="digits", labels=make_labels(list(LABELS)))
    data = load_digits_images(50, seed=2)
    items = []
    for name, image in zip(data.names[:6], data.images[:6], strict=True):
        buffer = io.BytesIO(encode_png(image))
        buffer.name = name
        items.append(dataset.items.upload(local_path=buffer))
    model = platform.create_model(project, "digits-adapter-test", dataset=dataset, labels=list(LABELS))
    adapter = DigitsAdapter()
    adapter.model_entity = model
    adapter.model = fit_classifier(image_features(data.images), data.labels)
    platform.reset_counts()

    adapter.predict_items(items, batch_size=len(items))  # a new model: one check, no per-item clean-up
    first = dict(platform.request_counts)
    assert _model_predictions(dataset, model.name) == {item.id: TOP_K for item in items}

    platform.reset_counts()
    adapter.predict_items(items, batch_size=len(items))  # predictions exist: dtlpy's clean-up per item
    second = dict(platform.request_counts)
    assert _model_predictions(dataset, model.name) == {item.id: TOP_K for item in items}  # replaced, not doubled

    # the clean-up is a dataset query with a delete per item; the check is one dataset query
    assert first.get("POST /datasets/{id}/query") == 1, first
    assert second.get("POST /datasets/{id}/query") == 1 + len(items), second
    assert first["POST /items/{id}/annotations"] == second["POST /items/{id}/annotations"] == len(items)
    assert np.isfinite(adapter.predict_proba(data.images[:1])).all()
