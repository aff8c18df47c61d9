"""Create New Model against the platform's asynchronous clone (``cloning``, then the final
status; dtlpy polls ``GET /ml/models/{id}``), which the ``platform`` fixture turns off for speed."""

from __future__ import annotations

from main import ServiceRunner


def test_the_node_returns_the_finished_clone(platform, project, dataset):
    platform.add_items(dataset, [{"name": "a.jpg", "metadata": {"system": {"tags": {"train": True}}}}])
    base = platform.create_model(project, "base", dataset=dataset, labels=["cat"], status="trained")
    platform.clone_async = True
    context = platform.make_context(node_config={"modelName": "{base_model.name}-async"}, project=project)

    new_model, returned_base = ServiceRunner().create_new_model(base_model=base, dataset=dataset, context=context)

    assert returned_base.id == base.id and new_model.name == "base-async"
    assert new_model.status == "created"  # Create New Model clones with status "created", never "cloning"
    assert platform.get_json("models", new_model.id)["status"] == "created"
    assert platform.request_counts["GET /ml/models/{id}"] >= 1  # dtlpy polled the cloning model
