"""A scikit-learn digits classifier wrapped as a Dataloop model adapter (``dl.BaseModelAdapter``).

``DigitsAdapter`` implements ``load`` / ``save`` / ``train`` / ``predict`` and lets dtlpy's own
``train_model``, ``evaluate_model`` and ``predict_items`` do the platform work; ``predict``
uploads the three most likely labels per image as class annotations with their probabilities.
``prepare_data`` lists each subset with paged queries instead of dtlpy's export, and ``evaluate``
leaves scoring to Compare Models (docs/demo.md). The artifact ``weights.npz`` is loaded with
``allow_pickle=False``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import MutableMapping

import dtlpy as dl
import numpy as np

from demo.data import decode_png, image_features

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.npz"
DEFAULT_CONFIGURATION = {"C": 1.0, "max_iter": 300, "batch_size": 256}
TOP_K = 3  # class annotations uploaded per predicted item


def top_k_indices(row: np.ndarray, k: int = TOP_K) -> list[int]:
    """Column indices of the ``k`` largest probabilities, largest first (ties: lower index first).

    Examples
    --------
    >>> top_k_indices(np.array([0.1, 0.5, 0.3, 0.1]), 3)
    [1, 2, 0]
    """
    order = np.argsort(-np.asarray(row, dtype=float), kind="stable")
    return [int(i) for i in order[: min(k, len(order))]]


def fit_classifier(features: np.ndarray, labels: list[str] | np.ndarray, c: float = 1.0, max_iter: int = 300):
    """Fit the demo's classifier: multinomial logistic regression on pixel features.

    Examples
    --------
    >>> clf = fit_classifier(np.eye(4), ["a", "b", "a", "b"])
    >>> clf.classes_.tolist()
    ['a', 'b']
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(C=float(c), max_iter=int(max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(np.asarray(features, dtype=float), np.asarray(labels))
    return classifier


def class_probabilities(classifier, features: np.ndarray, labels: list[str]) -> np.ndarray:
    """Class probabilities of ``features`` with one column per name in ``labels``.

    Labels the classifier never saw in training get probability 0.

    Examples
    --------
    >>> clf = fit_classifier(np.eye(4), ["a", "b", "a", "b"])
    >>> class_probabilities(clf, np.eye(4)[:1], ["a", "b", "c"]).shape
    (1, 3)
    """
    probabilities = np.zeros((len(features), len(labels)))
    if len(features) == 0:
        return probabilities
    raw = classifier.predict_proba(np.asarray(features, dtype=float))
    column = {name: j for j, name in enumerate(labels)}
    for k, name in enumerate(classifier.classes_):
        probabilities[:, column[str(name)]] = raw[:, k]
    return probabilities


def classifier_to_arrays(classifier) -> dict[str, np.ndarray]:
    """The arrays that fully describe a fitted logistic regression (for ``weights.npz``)."""
    return {
        "coef": np.asarray(classifier.coef_, dtype=float),
        "intercept": np.asarray(classifier.intercept_, dtype=float),
        "classes": np.asarray([str(c) for c in classifier.classes_]),
    }


def classifier_from_arrays(arrays: MutableMapping | dict) -> object:
    """Rebuild a fitted ``LogisticRegression`` from :func:`classifier_to_arrays` output.

    Examples
    --------
    >>> clf = fit_classifier(np.eye(4), ["a", "b", "a", "b"])
    >>> again = classifier_from_arrays(classifier_to_arrays(clf))
    >>> bool(np.allclose(again.predict_proba(np.eye(4)), clf.predict_proba(np.eye(4))))
    True
    """
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression()
    classifier.coef_ = np.asarray(arrays["coef"], dtype=float)
    classifier.intercept_ = np.asarray(arrays["intercept"], dtype=float)
    classifier.classes_ = np.asarray(arrays["classes"])
    classifier.n_features_in_ = classifier.coef_.shape[1]
    return classifier


class ImageAdapter(dl.BaseModelAdapter):
    """What the demo's image adapters share: a quiet ``__init__``, ``weights.npz`` artifacts (no
    pickles), one download per image per run, predictions replaced only when there is something
    to replace, no platform scoring in ``evaluate``, and ``prepare_data``'s folders.

    Subclasses give ``weights_from_arrays`` / ``weights_to_arrays`` and the four adapter methods'
    task-specific parts (``train``, ``predict``, ``prepare_data``'s subset files).
    """

    def __init__(
        self, model_entity: dl.Model | None = None, image_cache: dict | None = None, replace_predictions: bool = True
    ):
        self.image_cache = image_cache if image_cache is not None else {}
        self.replace_predictions = replace_predictions
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dl_logger = logging.getLogger("dtlpy")
            level = dl_logger.level
            dl_logger.setLevel(logging.ERROR)  # the base class warns about model_info names on every init
            try:
                super().__init__(model_entity=model_entity)
            finally:
                dl_logger.setLevel(level)

    def weights_from_arrays(self, arrays: dict):
        """The fitted model from the arrays of ``weights.npz``."""
        raise NotImplementedError

    def weights_to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays ``weights.npz`` stores for ``self.model``."""
        raise NotImplementedError

    def load(self, local_path: str, **kwargs) -> None:
        """Load ``weights.npz`` from ``local_path`` if present; otherwise start untrained."""
        path = os.path.join(local_path, WEIGHTS_FILE)
        if os.path.isfile(path):
            with np.load(path, allow_pickle=False) as arrays:
                self.model = self.weights_from_arrays(dict(arrays))
            logger.debug("loaded weights of %s from %s", self.model_entity.name, path)
        else:
            self.model = None

    def save(self, local_path: str, **kwargs) -> None:
        """Write ``weights.npz`` (and ``labels.json``) to ``local_path``."""
        if self.model is None:
            raise ValueError(f"model {self.model_entity.name!r} has no weights to save; train it first")
        os.makedirs(local_path, exist_ok=True)
        np.savez(os.path.join(local_path, WEIGHTS_FILE), **self.weights_to_arrays())
        with open(os.path.join(local_path, "labels.json"), "w", encoding="utf-8") as f:
            json.dump(list(self.model_entity.labels), f)

    def prepare_item_func(self, item: dl.Item) -> np.ndarray:
        """The item's image as a uint8 array; downloaded once per run (``image_cache``, by file name:
        the demo's file names are unique, and a clone in the Ground Truth dataset is the same image)."""
        key = image_key(item)
        image = self.image_cache.get(key)
        if image is None:
            buffer = item.download(save_locally=False)
            image = decode_png(buffer.getvalue() if hasattr(buffer, "getvalue") else buffer.read())
            self.image_cache[key] = image
        return image

    def predict_items(self, items: list, batch_size=None, **kwargs):
        """dtlpy's ``predict_items``, with one check first: when the items are many, all of one
        dataset, and the dataset holds no prediction of this model yet (a new model evaluated for
        the first time), the per-item clean-up dtlpy does before each upload would delete nothing,
        and is skipped (one annotation query instead of one delete per item)."""
        self._nothing_to_replace = self._no_predictions_yet(items)
        try:
            return super().predict_items(items, batch_size=batch_size, **kwargs)
        finally:
            self._nothing_to_replace = False

    def _no_predictions_yet(self, items: list) -> bool:
        if not self.replace_predictions or len(items) < 2 or self.model_entity is None:
            return False  # one item: the check would cost as much as the clean-up it saves
        dataset_ids = {getattr(item, "dataset_id", None) for item in items}
        if len(dataset_ids) != 1 or None in dataset_ids:
            return False
        filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
        filters.add(field="metadata.user.model.name", values=self.model_entity.name)
        filters.page_size = 1
        return items[0].dataset.annotations.list(filters=filters).items_count == 0

    def _upload_model_annotations(self, item: dl.Item, predictions):
        """Upload one item's predictions; skip dtlpy's clean-up query when nothing can be replaced."""
        if self.replace_predictions and not getattr(self, "_nothing_to_replace", False):
            return super()._upload_model_annotations(item, predictions)
        return item.annotations.upload(annotations=predictions)

    def evaluate(self, model: dl.Model, dataset: dl.Dataset, filters: dl.Filters) -> dl.Model:
        """No platform scoring here: Compare Models scores the uploaded predictions."""
        return model

    def data_folders(self, dataset: dl.Dataset, root_path=None, data_path=None, output_path=None):
        """``prepare_data``'s folders (made): ``root_path``, ``data_path``, ``output_path``, and the
        model's subsets. Paths default under ``$DATALOOP_PATH/model_data``, never the current
        directory (dtlpy's ``train_model`` passes a relative ``tmp/<id>``)."""
        subsets = self.model_entity.metadata.get("system", {}).get("subsets")
        if not subsets:
            raise ValueError(f"model {self.model_entity.name!r} has no metadata.system.subsets; create it with subsets")
        base = os.environ.get("DATALOOP_PATH") or tempfile.gettempdir()
        if root_path is None or not os.path.isabs(str(root_path)):
            root_path = os.path.join(base, "model_data", self.model_entity.id)
        data_path = data_path or os.path.join(root_path, "datasets", dataset.id)
        output_path = output_path or os.path.join(root_path, "output")
        os.makedirs(data_path, exist_ok=True)
        os.makedirs(output_path, exist_ok=True)
        return root_path, data_path, output_path, subsets


class DigitsAdapter(ImageAdapter):
    """Model adapter of the demo's digits classifier (load / save / train / predict).

    Parameters
    ----------
    model_entity : dl.Model, optional
        Loaded with ``load_from_model`` (artifacts downloaded) when given.
    image_cache : dict, optional
        ``file name -> uint8 image`` shared between adapters of one run, so each item's
        file is downloaded once per run, not once per model.
    replace_predictions : bool
        ``True`` (dtlpy's behaviour): before uploading an item's predictions, delete that
        model's earlier ones (one extra query per item). ``False`` when the caller knows the
        model has never predicted on these items (a freshly trained model), halving the
        requests of an evaluation.

    Examples
    --------
    >>> adapter = DigitsAdapter()          # doctest: +SKIP
    >>> adapter.train_model(model)         # doctest: +SKIP
    """

    last_validation_accuracy: float | None = None

    # ----------------------------------------------------------------- the four methods
    def weights_from_arrays(self, arrays: dict):
        return classifier_from_arrays(arrays)

    def weights_to_arrays(self) -> dict[str, np.ndarray]:
        return classifier_to_arrays(self.model)

    def train(self, data_path: str, output_path: str, **kwargs) -> None:
        """Fit on ``data_path/train.npz``; report accuracy on ``validation.npz`` when present."""
        train = np.load(os.path.join(data_path, "train.npz"), allow_pickle=False)
        config = {**DEFAULT_CONFIGURATION, **dict(self.configuration)}
        self.model = fit_classifier(train["features"], train["labels"], c=config["C"], max_iter=config["max_iter"])
        validation_path = os.path.join(data_path, "validation.npz")
        if os.path.isfile(validation_path):
            validation = np.load(validation_path, allow_pickle=False)
            if len(validation["labels"]):
                predicted = self.model.predict(validation["features"])
                self.last_validation_accuracy = float(np.mean(predicted == validation["labels"]))
        callback = kwargs.get("on_epoch_end_callback")
        if callback is not None:
            callback(0, 1)
        logger.info(
            "trained %s on %d items (validation accuracy %s)",
            self.model_entity.name,
            len(train["labels"]),
            "n/a" if self.last_validation_accuracy is None else f"{self.last_validation_accuracy:.3f}",
        )

    def predict(self, batch: list[np.ndarray], **kwargs) -> list[dl.AnnotationCollection]:
        """The ``TOP_K`` most likely labels per image as class annotations, each with its probability.

        Several class annotations per item make the uncertainty scores real (margin and entropy
        need the second and third probabilities) and give Compare Models a score for every
        item-label pair it ranks, so its precision-recall curves have real shape.
        """
        probabilities = self.predict_proba(batch)
        labels = list(self.model_entity.labels)
        collections = []
        for row in probabilities:
            collection = dl.AnnotationCollection()
            for best in top_k_indices(row, TOP_K):
                collection.add(
                    annotation_definition=dl.Classification(label=labels[best]),
                    model_info={
                        "name": self.model_entity.name,
                        "model_id": self.model_entity.id,
                        "confidence": float(np.clip(row[best], 0.0, 1.0)),
                    },
                )
            collections.append(collection)
        return collections

    # ----------------------------------------------------------------- helpers
    def predict_proba(self, batch: list[np.ndarray]) -> np.ndarray:
        """Class probabilities (n_images, n_labels), columns in ``model_entity.labels`` order."""
        if self.model is None:
            raise ValueError(f"model {self.model_entity.name!r} is not trained; run train_model first")
        return class_probabilities(self.model, image_features(batch), list(self.model_entity.labels))

    # ----------------------------------------------------------------- edge: data preparation
    def prepare_data(
        self, dataset: dl.Dataset, root_path=None, data_path=None, output_path=None, overwrite=False, **kwargs
    ):
        """Fetch each subset of ``model.metadata.system.subsets`` into ``data_path/<subset>.npz``.

        Edge function (talks to the platform). Items are listed with the subset's DQL
        filter (paged); images come through :meth:`prepare_item_func`; labels come from
        one paged query of the dataset's ground-truth classifications (annotations
        without model metadata). Paths default under ``$DATALOOP_PATH/model_data``, never
        the current directory (dtlpy's ``train_model`` passes a relative ``tmp/<id>``).
        """
        root_path, data_path, output_path, subsets = self.data_folders(dataset, root_path, data_path, output_path)
        ground_truth = ground_truth_labels(dataset)
        for subset, dql in subsets.items():
            items = list_items(dataset, dql)
            labelled = [item for item in items if item.id in ground_truth]
            if subset == "train" and not labelled:
                raise ValueError(f"subset {subset!r} of model {self.model_entity.name!r} has no labelled items")
            images = [self.prepare_item_func(item) for item in labelled]
            features = image_features(images) if images else np.zeros((0, 64))
            labels = np.asarray([ground_truth[item.id] for item in labelled], dtype=str)
            np.savez(os.path.join(data_path, f"{subset}.npz"), features=features, labels=labels)
            logger.debug("subset %s: %d labelled items of %d", subset, len(labelled), len(items))
        return root_path, data_path, output_path


def image_key(item) -> str:
    """The image cache key of an item: its file name (unique in the demo; kept by a clone)."""
    return item.name


def list_items(dataset: dl.Dataset, dql: dict) -> list[dl.Item]:
    """Edge: every item matching the DQL filter ``dql`` (``{"filter": ...}``), paged by 1,000."""
    filters = dl.Filters(custom_filter=json.loads(json.dumps(dql)))
    filters.page_size = 1000
    return [item for page in dataset.items.list(filters=filters) for item in page]


def ground_truth_labels(dataset: dl.Dataset) -> dict[str, str]:
    """Edge: ``item id -> label`` of ground-truth classifications (no model metadata), paged."""
    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    filters.add(field="type", values="class")
    filters.add(field="metadata.system.model.name", values=False, operator=dl.FiltersOperations.EXISTS)
    filters.page_size = 1000
    labels = {}
    for page in dataset.annotations.list(filters=filters):
        for annotation in page:
            if (annotation.metadata or {}).get("user", {}).get("model"):
                continue
            labels[annotation.item_id] = annotation.label
    return labels
