"""Documented dtlpy snippets around folders and ``$match`` that the pipelines' datasets rely on
(issue 22 part 6): each test names its source."""

from __future__ import annotations

import dtlpy as dl
import pytest

from emulator.store import ApiError


def _dirs(dataset: dl.Dataset) -> list[str]:
    filters = dl.Filters()
    filters.add(field="type", values="dir")
    return sorted(i.filename for i in dataset.items.list(filters=filters).all())


def test_uploading_into_a_folder_creates_its_directory_items(platform, dataset, tmp_path):
    """dtlpy ``repositories/codebases.py`` ``list`` finds uploaded codebases by the ``type: "dir"``
    items of their folders, and dtlpy's behave steps (items update: "PageEntity has directory
    item") list a folder an item was put in with ``filters.add(field='type', values='dir')``
    (dtlpy-documentation, DQL cookbook "Working with Hidden Items": directories are items of type
    ``dir``). Hidden folders make hidden directory items; default listings show files only."""
    local = tmp_path / "a.txt"
    local.write_text("x")
    dataset.items.upload(local_path=str(local), remote_path="/folder/sub")
    dataset.items.upload(local_path=str(local), remote_path="/folder/sub", overwrite=True)
    dataset.items.upload(local_path=str(local), remote_path="/.secret")
    assert _dirs(dataset) == ["/folder", "/folder/sub"]
    assert [i.filename for i in dataset.items.list().all()] == ["/folder/sub/a.txt"]
    everything = dl.Filters(use_defaults=False)
    everything.add(field="type", values="dir")
    hidden = {i.filename: i.hidden for i in dataset.items.list(filters=everything).all()}
    assert hidden == {"/folder": False, "/folder/sub": False, "/.secret": True}
    folder = dataset.items.get(filepath="/folder/sub", is_dir=True)
    assert folder.type == "dir" and folder.dir == "/folder"


def test_an_invalid_match_pattern_is_an_error_answer_which_dtlpy_turns_into_an_empty_page(platform, dataset):
    """Dataloop answers a malformed query with an error (DQL docs: errors are 400s; dtlpy raises
    ``BadRequest`` for 400); dtlpy's ``PagedEntities.get_page`` (entities/paged_entities.py)
    catches ``BadRequest``, logs "BadRequest error received" and shows an empty page: the empty
    listing is dtlpy's, the platform's answer is the 400."""
    platform.add_items(dataset, [{"name": "a.jpg"}])
    body = {"filter": {"name": {"$match": "("}}, "resource": "items", "page": 0, "pageSize": 10}
    with pytest.raises(ApiError) as error:
        platform.call("POST", f"/datasets/{dataset.id}/query", body)
    assert error.value.status == 400 and "$match" in error.value.message
    filters = dl.Filters(field="name", values="(", operator=dl.FiltersOperations.MATCH)
    assert dataset.items.list(filters=filters).items == []


def test_moving_an_item_into_a_new_folder_creates_its_directory_item(platform, dataset, tmp_path):
    """dtlpy's behave steps for item update ("I update items name to ..." then "PageEntity has
    directory item ...") rename an item into a folder and find the folder's ``type: "dir"`` item."""
    local = tmp_path / "b.txt"
    local.write_text("x")
    item = dataset.items.upload(local_path=str(local))
    item.filename = "/moved/here/b.txt"
    assert dataset.items.update(item=item).filename == "/moved/here/b.txt"
    assert _dirs(dataset) == ["/moved", "/moved/here"]
