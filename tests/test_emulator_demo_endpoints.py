"""Contract tests of the emulator endpoints the demo's model adapter relies on.

dtlpy's ``BaseModelAdapter`` stores a model's weights as *artifacts*: items in the
project's hidden ``Binaries`` dataset (looked up by a system-space datasets query), listed
by directory and linked from the model (``model.model_artifacts``); ``load_from_model``
downloads them again through the item stream. These tests drive exactly those dtlpy calls.
"""

from __future__ import annotations

import io
import os

import dtlpy as dl
import pytest

from emulator.server import _Handler


def test_binaries_dataset_is_found_once_per_project(platform, project):
    first = project.datasets._get_binaries_dataset()
    second = project.datasets._get_binaries_dataset()
    assert first.name == "Binaries"
    assert first.id == second.id
    assert platform.request_counts["POST /datasets/query"] == 2
    assert platform.write_count() == 0  # a lookup, not a client write
    assert [d.name for d in project.datasets.list()].count("Binaries") == 1


def test_binaries_dataset_is_per_project(platform, project):
    other = dl.projects.create(project_name=f"{project.name}-other")
    assert project.datasets._get_binaries_dataset().id != other.datasets._get_binaries_dataset().id


def test_ordinary_dataset_queries_do_not_create_binaries(platform, project, dataset):
    filters = dl.Filters(resource=dl.FiltersResource.DATASET)
    filters.add(field="name", values=dataset.name)
    assert [d.name for d in project.datasets.list(filters=filters)] == [dataset.name]
    assert "Binaries" not in [d.name for d in project.datasets.list()]


def test_model_artifacts_round_trip(platform, project, dataset, tmp_path):
    model = platform.create_model(project, name="with-weights", dataset=dataset, status="created")
    weights = tmp_path / "out"
    weights.mkdir()
    (weights / "weights.npz").write_bytes(b"\x93NUMPY-fake-weights")
    (weights / "labels.json").write_text('["cat", "dog", "bird"]')

    model.artifacts.upload(filepath=os.path.join(str(weights), "*"), overwrite=True)

    fetched = dl.models.get(model_id=model.id)
    linked = [dl.items.get(item_id=a.id) for a in fetched.model_artifacts]
    assert sorted(i.filename for i in linked) == [
        f"/artifacts/models/{model.name}/labels.json",
        f"/artifacts/models/{model.name}/weights.npz",
    ]
    assert {i.dataset.name for i in linked} == {"Binaries"}

    target = tmp_path / "downloaded"
    fetched.artifacts.download(local_path=str(target), overwrite=True)
    assert (target / "weights.npz").read_bytes() == b"\x93NUMPY-fake-weights"
    assert (target / "labels.json").read_text() == '["cat", "dog", "bird"]'


def test_item_stream_returns_the_uploaded_bytes(platform, dataset):
    payload = bytes(range(256)) * 3
    buffer = io.BytesIO(payload)
    buffer.name = "blob.png"
    item = dataset.items.upload(local_path=buffer)
    platform.reset_counts()
    assert item.download(save_locally=False).getvalue() == payload
    assert platform.request_counts["GET /items/{id}/stream"] == 1


@pytest.mark.parametrize("attribute", ["disable_nagle_algorithm"])
def test_server_answers_without_nagle_delay(attribute):
    # headers and body are written separately; with Nagle on, every keep-alive answer
    # waited for the client's delayed ACK (~40 ms a request)
    assert getattr(_Handler, attribute) is True


def test_page_size_zero_is_a_count_query(platform, dataset):
    # dtlpy's BaseModelAdapter counts a subset with pageSize 0 before predicting it
    platform.add_items(dataset, [{"name": f"{i}.png"} for i in range(7)])
    filters = dl.Filters()
    filters.page_size = 0
    platform.reset_counts()
    pages = dataset.items.list(filters=filters)
    assert pages.items_count == 7
    assert platform.request_counts["POST /datasets/{id}/query"] == 1


def test_negative_page_size_is_still_rejected(platform, dataset):
    # (dtlpy's paged listing logs and swallows a 400, so ask the store directly)
    from emulator.store import ApiError

    with pytest.raises(ApiError, match="pageSize"):
        platform.store.query_dataset(dataset.id, {"filter": {}, "pageSize": -1})


def test_fixed_id_prefix_makes_ids_reproducible():
    # the demo's Data Split routes by a hash of item ids: fixed ids make a run repeatable
    from emulator import LocalPlatform
    from emulator.store import IdFactory

    def first_ids() -> list[str]:
        with LocalPlatform(id_prefix="0000002a") as local:
            project = dl.projects.create(project_name="ids")
            data = local.create_dataset(project, "d", labels=["a"])
            buffer = io.BytesIO(b"x")
            buffer.name = "x.png"
            return [project.id, data.id, data.items.upload(local_path=buffer).id]

    first, second = first_ids(), first_ids()
    assert first == second
    assert all(i.startswith("0000002a") for i in first)
    with pytest.raises(ValueError, match="8 lowercase hex digits"):
        IdFactory("xyz")
