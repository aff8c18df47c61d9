"""Recipes and ontologies: a dataset's ``metadata.system.recipes`` name its recipes, a recipe's
``ontologyIds`` its ontologies, whose ``roots`` are the labels (stored as sent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, StoreBase, clone, now_iso


class RecipesMixin(StoreBase):
    def create_ontology(self, body: Mapping[str, Any]) -> dict:
        roots = body.get("roots", [])
        if not isinstance(roots, list):
            raise ApiError(400, "ontology 'roots' must be a list of labels")
        with self.lock:
            ontology_id = self.ids.new()
            ontology = self._base("ontologies", ontology_id)
            ontology.update(
                {
                    "title": body.get("title", ontology_id),
                    "roots": clone(roots),
                    "attributes": clone(body.get("attributes", [])),
                    "metadata": {"system": {"projectIds": list(body.get("projectIds") or [])}, "attributes": []},
                }
            )
            self.tables["ontologies"][ontology_id] = ontology
            return clone(ontology)

    def get_ontology(self, ontology_id: str) -> dict:
        return self.get("ontologies", ontology_id)

    def update_ontology(self, ontology_id: str, body: Mapping[str, Any]) -> dict:
        with self.lock:
            ontology = self._get("ontologies", ontology_id)
            for key in ("roots", "title", "attributes", "metadata"):
                if key in body:
                    ontology[key] = clone(body[key])
            ontology["updatedAt"] = now_iso()
            return clone(ontology)

    def upsert_labels(self, ontology_id: str, body: Mapping[str, Any], add_only: bool = False) -> dict:
        """``PATCH /ontologies/{id}/labels`` (``upsert`` true adds missing labels, false only
        updates existing ones: 404 otherwise) and ``PATCH /ontologies/{id}/addLabels`` (adds;
        409 when the label exists). Body ``{"labelsNode": [{"tag": "parent.child", "color":
        "#rrggbb", "attributes", "displayLabel", "displayData"}]}``; answers the ontology.

        Source: dtlpy 1.126.5 ``entities/ontology.py`` ``_base_labels_handler`` /
        ``_labels_handler_update_mode`` / ``_labels_handler_add_mode`` (children are sent as
        their own nodes with dotted tags; the answer's ``roots`` replace the labels).
        """
        nodes = body.get("labelsNode")
        if not isinstance(nodes, list) or not all(isinstance(n, Mapping) and n.get("tag") for n in nodes):
            raise ApiError(400, "labels update needs 'labelsNode': a list of {'tag': ...}")
        upsert = bool(body.get("upsert", False)) or add_only
        with self.lock:
            ontology = self._get("ontologies", ontology_id)
            roots = clone(ontology.get("roots") or [])
            for node in nodes:
                parts = str(node["tag"]).split(".")
                siblings, found = roots, None
                for depth, part in enumerate(parts):
                    found = next((r for r in siblings if r.get("value", {}).get("tag") == part), None)
                    if found is None:
                        if not upsert or depth < len(parts) - 1:
                            raise ApiError(404, f"label not found: {node['tag']!r}")
                        found = {"value": {"tag": part, "displayLabel": part, "color": "#000000",
                                           "attributes": []}, "children": []}  # fmt: skip
                        siblings.append(found)
                    elif add_only and depth == len(parts) - 1:
                        raise ApiError(409, f"label {node['tag']!r} already exists")
                    siblings = found.setdefault("children", [])
                value = found["value"]
                for key in ("color", "attributes", "displayLabel", "displayData"):
                    if node.get(key) is not None:
                        value[key] = clone(node[key])
            ontology["roots"] = roots
            ontology["updatedAt"] = now_iso()
            return clone(ontology)

    def add_labels(self, ontology_id: str, body: Mapping[str, Any]) -> dict:
        return self.upsert_labels(ontology_id, body, add_only=True)

    def create_recipe(self, body: Mapping[str, Any]) -> dict:
        ontology_ids = body.get("ontologyIds") or []
        with self.lock:
            for ontology_id in ontology_ids:
                self._get("ontologies", ontology_id)
            recipe_id = self.ids.new()
            recipe = self._base("recipes", recipe_id)
            recipe.update(
                {
                    "title": body.get("title", "Default Recipe"),
                    "projectIds": list(body.get("projectIds") or []),
                    "ontologyIds": list(ontology_ids),
                    "uiSettings": clone(body.get("uiSettings", {})),
                    "metadata": {"system": {}},
                    "customActions": [],
                    "instructions": [],
                    "examples": [],
                }
            )
            self.tables["recipes"][recipe_id] = recipe
            return clone(recipe)

    def get_recipe(self, recipe_id: str) -> dict:
        return self.get("recipes", recipe_id)

    def patch_recipe(self, recipe_id: str, body: Mapping[str, Any]) -> dict:
        with self.lock:
            recipe = self._get("recipes", recipe_id)
            for key, value in body.items():
                if key not in ("id", "url", "createdAt", "creator"):
                    recipe[key] = clone(value)
            recipe["updatedAt"] = now_iso()
            return clone(recipe)

    def dataset_labels(self, dataset_id: str) -> list[str]:
        """Label tags of a dataset's (first) recipe ontology, children as ``parent.child``."""
        with self.lock:
            dataset = self._get("datasets", dataset_id)
            tags: list[str] = []
            for recipe_id in dataset.get("metadata", {}).get("system", {}).get("recipes", []):
                recipe = self.tables["recipes"].get(recipe_id)
                for ontology_id in (recipe or {}).get("ontologyIds", []):
                    ontology = self.tables["ontologies"].get(ontology_id)
                    for root in (ontology or {}).get("roots", []):
                        _collect_tags(root, "", tags)
            return tags


def _collect_tags(root: Mapping[str, Any], prefix: str, out: list[str]) -> None:
    value = root.get("value", root)
    tag = value.get("tag") or value.get("label_name")
    if tag is None:
        return
    full = f"{prefix}.{tag}" if prefix else tag
    out.append(full)
    for child in root.get("children") or []:
        _collect_tags(child, full, out)
