"""``nodes.common.paging.json_pages`` with the real dtlpy client on the local platform: raw JSON pages,
one request per page, keyset paging across pages, joins and custom filters kept, the caller's
filters untouched, and errors."""

from __future__ import annotations

import copy

import dtlpy as dl
import pytest

from nodes.common.paging import build_entities, count_matches, json_pages, offset_pages

QUERY = "POST /datasets/{id}/query"
TEST = {"system": {"tags": {"test": True}}}


def _box(label, x):
    return {
        "type": "box",
        "label": label,
        "coordinates": [{"x": x, "y": 1.0, "z": 0}, {"x": x + 5.0, "y": 9.0, "z": 0}],
        "metadata": {},
    }


@pytest.fixture
def seeded(platform, dataset):
    """5 items (3 tagged test), 2 boxes on each (cat+dog on test items, bird+dog on the others): 10
    annotations. Returns (test item ids, other ids)."""
    ids = platform.add_items(dataset, [{"name": f"i{k}.jpg", "metadata": TEST if k < 3 else {}} for k in range(5)])
    for k, item_id in enumerate(ids):
        first = "cat" if k < 3 else "bird"
        platform.store.create_annotations(item_id, [_box(first, k), _box("dog", k + 0.5)])
    platform.reset_counts()
    return ids[:3], ids[3:]


def _spy(repository, monkeypatch):
    """Record the body dtlpy sends for every page (the prepared filter)."""
    sent = []
    original = repository._list

    def spy(filters):
        sent.append(copy.deepcopy(filters.prepare()))
        return original(filters=filters)

    monkeypatch.setattr(repository, "_list", spy)
    return sent


def test_annotations_come_as_raw_json_in_keyset_pages(platform, dataset, seeded, monkeypatch):
    repository = dataset.annotations
    sent = _spy(repository, monkeypatch)
    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    before = copy.deepcopy(filters.prepare())

    pages = list(json_pages(repository, filters, page_size=3))

    assert [len(p) for p in pages] == [3, 3, 3, 1]
    docs = [doc for page in pages for doc in page]
    assert all(isinstance(doc, dict) and not isinstance(doc, dl.Annotation) for doc in docs)
    expected = sorted(a["id"] for a in platform.annotations_json(dataset.id))
    assert [doc["id"] for doc in docs] == expected  # every annotation once, in id order
    assert {doc["label"] for doc in docs} == {"cat", "dog", "bird"} and all(doc["type"] == "box" for doc in docs)
    assert platform.request_counts[QUERY] == 4 == len(sent)  # one request per page
    assert sum(platform.request_counts.values()) == 4
    # keyset: sorted by id, always page 0, the next page starts after the previous page's last id
    assert all(body["sort"] == {"id": "ascending"} and body["page"] == 0 for body in sent)
    assert all(body["pageSize"] == 3 for body in sent)
    for body, previous_page in zip(sent[1:], pages, strict=False):
        assert body["filter"] == {"$and": [sent[0]["filter"], {"id": {"$gt": previous_page[-1]["id"]}}]}
    assert "$gt" not in str(sent[0]["filter"])
    assert filters.prepare() == before  # the caller's filters are untouched


def test_join_filters_are_sent_on_every_page(platform, dataset, seeded, monkeypatch):
    test_ids, other_ids = seeded
    # annotations joined with an item filter (what Compare Models sends): only the dogs on test items
    repository = dataset.annotations
    sent = _spy(repository, monkeypatch)
    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    filters.add(field="label", values="dog")
    filters.add_join(field="metadata.system.tags.test", values=True)
    docs = [doc for page in json_pages(repository, filters, page_size=2) for doc in page]
    assert {doc["label"] for doc in docs} == {"dog"} and len(docs) == 3
    assert {doc["itemId"] for doc in docs} == set(test_ids)
    assert len(sent) == 2 == platform.request_counts[QUERY]
    assert all(body["join"] == sent[0]["join"] and "metadata.system.tags.test" in str(body["join"]) for body in sent)
    assert all("$gt" not in str(body["join"]) for body in sent)  # the keyset clause goes to the listed resource

    # items joined with an annotation filter (applied by the emulator): only items with a cat
    platform.reset_counts()
    sent = _spy(dataset.items, monkeypatch)
    filters = dl.Filters(resource=dl.FiltersResource.ITEM)
    filters.add_join(field="label", values="cat")
    pages = list(json_pages(dataset.items, filters, page_size=2))
    assert [len(p) for p in pages] == [2, 1]
    assert [doc["id"] for page in pages for doc in page] == sorted(test_ids)
    assert len(sent) == 2 == platform.request_counts[QUERY]
    assert all(body["join"] == sent[0]["join"] and "cat" in str(body["join"]) for body in sent)
    assert not set(other_ids) & {doc["id"] for page in pages for doc in page}


def test_custom_filter_is_paged_by_offset_without_entities(platform, dataset, seeded, monkeypatch):
    test_ids, _ = seeded
    repository = dataset.items
    sent = _spy(repository, monkeypatch)
    query = {"filter": {"$and": [{"metadata.system.tags.test": True}, {"hidden": False}, {"type": "file"}]}}
    filters = dl.Filters(resource=dl.FiltersResource.ITEM, custom_filter=copy.deepcopy(query))

    pages = list(json_pages(repository, filters, page_size=2))

    assert [len(p) for p in pages] == [2, 1]
    assert sorted(doc["id"] for page in pages for doc in page) == sorted(test_ids)
    assert all(isinstance(doc, dict) for page in pages for doc in page)
    assert [body["page"] for body in sent] == [0, 1] and all(body["pageSize"] == 2 for body in sent)
    # an explicit order, never the platform's default (type, then newest first)
    assert all(body["sort"] == {"id": "ascending"} for body in sent)
    assert [doc["id"] for page in pages for doc in page] == sorted(test_ids)
    assert platform.request_counts[QUERY] == 2
    assert filters.custom_filter == query  # dtlpy's prepare() writes into custom_filter: a copy was paged


def test_page_size_default_none_and_validation(platform, dataset, seeded, monkeypatch):
    repository = dataset.annotations
    sent = _spy(repository, monkeypatch)
    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION, page_size=4)

    assert [len(p) for p in json_pages(repository, filters)] == [10]  # default: full pages of 1000
    assert [len(p) for p in json_pages(repository, filters, page_size=None)] == [4, 4, 2]  # the caller's size
    assert [body["pageSize"] for body in sent] == [1000, 4, 4, 4]
    for bad in (0, 1001, True, 2.5, "10"):
        with pytest.raises(ValueError, match=r"page_size: .* is not an integer from 1 to 1000"):
            next(json_pages(repository, filters, page_size=bad))
    assert len(sent) == 4  # a bad page size sends nothing


def test_no_answer_from_dtlpy_is_an_error_not_an_empty_listing(platform, dataset, seeded, monkeypatch):
    monkeypatch.setattr(dataset.items, "_list", lambda filters: None)
    with pytest.raises(RuntimeError, match="listing items failed"):
        list(json_pages(dataset.items, dl.Filters()))


def test_server_errors_propagate_after_dtlpy_retries(platform, dataset, seeded):
    platform.fail_next("POST", r"/query", status=503, times=1)
    docs = [doc for page in json_pages(dataset.items, dl.Filters(), page_size=2) for doc in page]
    assert len(docs) == 5  # a transient error is retried by dtlpy: nothing lost, nothing repeated
    assert len({doc["id"] for doc in docs}) == 5


def test_or_filters_keep_the_keyset_separable_from_the_filter(platform, dataset, seeded, monkeypatch):
    """dtlpy would put ``id > last`` in ``$and`` beside a top-level ``$or``, where a server cannot
    take it out of the filter and re-matches everything per page; the whole filter is nested."""
    from emulator import dql

    repository = dataset.annotations
    sent = _spy(repository, monkeypatch)
    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    filters.add(field="label", values="cat", method=dl.FiltersMethod.OR)
    filters.add(field="label", values="bird", method=dl.FiltersMethod.OR)
    docs = [doc for page in json_pages(repository, filters, page_size=2) for doc in page]
    assert sorted(doc["label"] for doc in docs) == ["bird", "bird", "cat", "cat", "cat"]
    assert "$or" in sent[0]["filter"] and len(sent) == 3
    split = [dql.split_id_keyset(body["filter"]) for body in sent]
    assert [bounds for _, bounds in split] == [{}, {"$gt": docs[1]["id"]}, {"$gt": docs[3]["id"]}]
    assert split[1][0] == split[2][0] == {"$and": [sent[0]["filter"]]}  # one filter for every page


def test_custom_filter_sort_gets_an_id_tie_break(platform, dataset, seeded, monkeypatch):
    sent = _spy(dataset.items, monkeypatch)
    query = {"filter": {"type": "file"}, "sort": {"metadata.system.tags.test": "descending"}}
    docs = [d for page in json_pages(dataset.items, dl.Filters(custom_filter=query), page_size=2) for d in page]
    assert len(docs) == 5 and len({d["id"] for d in docs}) == 5
    assert all(body["sort"] == {"metadata.system.tags.test": "descending", "id": "ascending"} for body in sent)


@pytest.mark.parametrize("custom", [False, True])
def test_a_refused_query_is_an_error_naming_it_not_an_empty_listing(platform, dataset, seeded, custom):
    """dtlpy's paged list logs a 400 and returns an empty page; json_pages raises, naming the query."""
    if custom:
        filters = dl.Filters(custom_filter={"filter": {"name": {"$match": "^a.*$"}}})
    else:
        filters = dl.Filters()
        filters.add(field="name", values="^a.*$", operator=dl.FiltersOperations.MATCH)
    platform.fail_next("POST", r"/datasets/[^/]+/query", status=400)
    assert list(dataset.items.list(filters=filters).all()) == []  # what dtlpy alone would say
    platform.fail_next("POST", r"/datasets/[^/]+/query", status=400)
    with pytest.raises(RuntimeError, match=r"the platform refused the items query .*\^a\.\*\$.*injected failure"):
        list(json_pages(dataset.items, filters))
    platform.fail_next("POST", r"/datasets/[^/]+/query", status=400)
    with pytest.raises(RuntimeError, match=r"refused the items query"):
        count_matches(dataset.items, filters)
    assert platform.requests[-1].status == 400


def test_offset_pages_sends_dtlpys_requests_and_raises_on_a_refused_query(platform, project, dataset):
    """Models are paged by offset as dtlpy's ``project.models.list`` pages them; a 400 names the query."""
    for n in range(5):
        platform.create_model(project, f"m{n}", dataset=dataset)
    filters = dl.Filters(resource=dl.FiltersResource.MODEL, page_size=2)
    filters.add(field="projectId", values=project.id)
    platform.reset_counts()
    pages = list(offset_pages(project.models, filters, page_size=None))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(m.name for p in pages for m in build_entities(project.models, p)) == [f"m{n}" for n in range(5)]
    assert platform.request_counts["POST /ml/models/query"] == 3  # what dtlpy's iteration sends
    assert filters.page == 0 and filters.page_size == 2  # untouched
    platform.fail_next("POST", r"/ml/models/query", status=400)
    with pytest.raises(RuntimeError, match=r"the platform refused the models query .*projectId"):
        list(offset_pages(project.models, filters))
    with pytest.raises(ValueError, match="structured filter"):
        list(offset_pages(project.models, dl.Filters(resource=dl.FiltersResource.MODEL, custom_filter={"filter": {}})))


def test_count_matches(platform, dataset, seeded, monkeypatch):
    test_ids, _ = seeded
    sent = _spy(dataset.items, monkeypatch)
    query = {"filter": {"metadata.system.tags.test": True}}
    filters = dl.Filters(custom_filter=copy.deepcopy(query))
    assert count_matches(dataset.items, filters) == len(test_ids)
    assert filters.custom_filter == query  # untouched
    assert count_matches(dataset.items, dl.Filters()) == 5
    assert [body["pageSize"] for body in sent] == [1, 1] and platform.request_counts[QUERY] == 2
