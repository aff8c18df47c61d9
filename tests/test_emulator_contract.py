"""Contract tests of the local platform (``emulator/``) through the real dtlpy client: every
call the nodes, tests and demo rely on, request counting, fault injection, errors and paging."""

from __future__ import annotations

import io

import dtlpy as dl

from emulator import LocalPlatform, make_labels


def _buffer(name: str, data: bytes) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


def _upload(dataset: dl.Dataset, count: int, tags=lambda i: {"train": i % 2 == 0}) -> list[dl.Item]:
    items = []
    for i in range(count):
        item = dataset.items.upload(
            local_path=_buffer(f"img-{i:03d}.txt", f"content {i}".encode()),
            item_metadata={"system": {"tags": tags(i)}, "user": {"index": i}},
        )
        items.append(item)
    return items


def test_acceptance_script(platform: LocalPlatform):
    """The issue's acceptance script, with counts matching what was written."""
    project = dl.projects.create(project_name="acceptance")
    dataset = project.datasets.create(dataset_name="images", labels=make_labels(["cat", "dog"]))
    assert [label.tag for label in dataset.labels] == ["cat", "dog"]

    items = _upload(dataset, 20)
    assert len({item.id for item in items}) == 20

    train = dl.Filters(field="metadata.system.tags.train", values=True)
    assert dataset.items.list(filters=train).items_count == 10

    odd = dl.Filters(field="metadata.user.index", values=[1, 3, 5], operator=dl.FiltersOperations.IN)
    dataset.items.update(filters=odd, system_update_values={"tags": {"validation": True}}, system_metadata=True)
    validation = dl.Filters(field="metadata.system.tags.validation", values=True)
    assert sorted(i.metadata["user"]["index"] for i in dataset.items.list(filters=validation).all()) == [1, 3, 5]
    # bulk update merges: the train tag written at upload is still there
    assert all("train" in i.metadata["system"]["tags"] for i in dataset.items.list(filters=validation).all())

    builder = items[0].annotations.builder()
    builder.add(annotation_definition=dl.Box(top=10, left=20, bottom=30, right=40, label="cat"))
    builder.add(annotation_definition=dl.Box(top=1, left=2, bottom=3, right=4, label="dog"))
    uploaded = items[0].annotations.upload(builder)
    assert len(uploaded) == 2
    listed = items[0].annotations.list()
    assert sorted(a.label for a in listed) == ["cat", "dog"]
    box = next(a for a in listed if a.label == "cat")
    assert (box.top, box.left, box.bottom, box.right) == (10, 20, 30, 40)

    model = platform.create_model(project, name="base", dataset=dataset, labels=["cat", "dog"], status="trained")
    clone = model.clone(
        model_name="base-v2",
        dataset=dataset,
        configuration={"epochs": 3},
        status="created",
        train_filter=train,
        validation_filter=validation,
    )
    back = dl.models.get(model_id=clone.id)
    assert back.name == "base-v2"
    assert back.status == "created"
    assert back.dataset_id == dataset.id
    assert back.configuration == {"epochs": 3}
    assert back.labels == ["cat", "dog"]
    subsets = back.metadata["system"]["subsets"]
    assert subsets["train"]["filter"] == train.prepare()["filter"]
    assert subsets["validation"]["filter"] == validation.prepare()["filter"]
    # the subset filters select what was written
    assert dataset.items.list(filters=dl.Filters(custom_filter=subsets["train"])).items_count == 10

    counts = platform.request_counts
    assert counts["POST /datasets/{id}/items"] == 20
    assert counts["POST /items/{id}/annotations"] == 1
    assert counts["POST /ml/models/{id}/clone"] == 1
