"""Documented DQL and listing behaviour of the Dataloop platform, through the real dtlpy client on
the local platform. Each test names its source in its docstring: the Dataloop documentation
(https://docs.dataloop.ai/docs/api-dql, https://docs.dataloop.ai/docs/dql-operators,
https://dataloop.ai/docs/api-dql), the DQL cookbook of dtlpy-documentation
(``tutorials/data_management/dataloop_query_language/more_examples/chapter.md``, "cookbook"
below) or dtlpy 1.126.5's source. Behaviour the documentation leaves open is an assumption listed
in emulator/README.md ("Divergences and assumptions"), and says so here.

Entities and endpoints are in ``tests/test_platform_conformance_api.py``.
"""

from __future__ import annotations

import threading
import time

import dtlpy as dl
import pytest

QUERY = "POST /datasets/{id}/query"


def _names(pages) -> list[str]:
    return sorted(item.name for item in pages.all())


def _custom(dataset, query: dict):
    """One page of a raw DQL query as dtlpy sends a ``custom_filter`` (offset paging)."""
    return dataset.items.list(filters=dl.Filters(custom_filter=query))


def _box(label: str) -> dict:
    return {"type": "box", "label": label, "coordinates": [{"x": 1, "y": 1, "z": 0}, {"x": 5, "y": 5, "z": 0}]}


def _set_refs(dataset, item_id: str, refs: list) -> None:
    item = dataset.items.get(item_id=item_id)
    item.metadata["system"]["refs"] = refs
    item.update(system_metadata=True)


# ------------------------------------------------------------------------------ wildcards
def test_wildcard_star_in_any_string_field(platform, dataset):
    """https://docs.dataloop.ai/docs/api-dql: the DQL example filters ``"metadata.system.mimetype":
    "video*"`` ("the wildcard character * makes this query search for any format of video")."""
    platform.add_items(dataset, [{"name": "clip.mp4"}, {"name": "movie.webm"}, {"name": "photo.jpg"}])
    filters = dl.Filters()
    filters.add(field="metadata.system.mimetype", values="video*")
    assert _names(dataset.items.list(filters=filters)) == ["clip.mp4", "movie.webm"]


def test_wildcard_question_mark_matches_one_character(platform, dataset):
    """https://docs.dataloop.ai/docs/dql-operators, Wildcards: "'*' and '?' are supported in field
    value ... ? Will match one character"."""
    platform.add_items(dataset, [{"name": "img1.jpg"}, {"name": "img2.jpg"}, {"name": "img10.jpg"}])
    filters = dl.Filters()
    filters.add(field="name", values="img?.jpg")
    assert _names(dataset.items.list(filters=filters)) == ["img1.jpg", "img2.jpg"]


def test_wildcard_on_filename_and_name_patterns(platform, dataset):
    """dtlpy-documentation ``onboarding/05_metadata_and_filtering.md`` (``filename: "*.jpg"``) and the
    cookbook, "Finding Specific Files" (``name: "foo.bar.*"``): ``*`` is zero or more characters."""
    platform.add_items(
        dataset,
        [
            {"name": "a.jpg", "dir": "/x/y"},
            {"name": "b.png"},
            {"name": "foo.bar.1"},
            {"name": "foo.bar"},
        ],
    )
    jpgs = dl.Filters()
    jpgs.add(field="filename", values="*.jpg")
    assert _names(dataset.items.list(filters=jpgs)) == ["a.jpg"]
    foo = dl.Filters()
    foo.add(field="name", values="foo.bar.*")
    assert _names(dataset.items.list(filters=foo)) == ["foo.bar.1"]


# ------------------------------------------------------------------------------ $match
def test_match_object_is_an_element_match_on_refs(platform, dataset):
    """Cookbook, "Check Remaining Items in Task", and ``dtlpy/repositories/tasks.py``: ``$match`` with
    ``{"id": task, "metadata": {"status": {"$exists": ...}}}`` on ``metadata.system.refs`` finds the
    items whose ref of that task has (or has not) a status."""
    ids = platform.add_items(dataset, [{"name": f"{k}.jpg"} for k in range(3)])
    _set_refs(dataset, ids[0], [{"id": "t1", "type": "task", "metadata": {"status": "completed"}}])
    _set_refs(
        dataset, ids[1], [{"id": "t1", "type": "task"}, {"id": "t2", "type": "task", "metadata": {"status": "x"}}]
    )
    _set_refs(dataset, ids[2], [{"id": "t2", "type": "task"}])
    for exists, expected in ((True, ["0.jpg"]), (False, ["1.jpg"])):
        filters = dl.Filters()
        filters.add(
            field="metadata.system.refs",
            values={"id": {"$in": ["t1"]}, "metadata": {"status": {"$exists": exists}}},
            operator=dl.FiltersOperations.MATCH,
        )
        assert _names(dataset.items.list(filters=filters)) == expected


def test_implicit_object_on_an_array_matches_one_element(platform, dataset):
    """Cookbook, "Find Items With Status by Task": ``metadata.system.refs: {"id": {"$in": [task]},
    "metadata": {"status": {"$in": ["completed"]}}}`` keeps "refs whose id == TASK_ID AND whose
    status == completed": one element, not two different ones."""
    ids = platform.add_items(dataset, [{"name": "same.jpg"}, {"name": "split.jpg"}])
    _set_refs(dataset, ids[0], [{"id": "t1", "metadata": {"status": "completed"}}])
    _set_refs(
        dataset,
        ids[1],
        [{"id": "t1", "metadata": {"status": "discard"}}, {"id": "t2", "metadata": {"status": "completed"}}],
    )
    filters = dl.Filters()
    filters.add(
        field="metadata.system.refs", values={"id": {"$in": ["t1"]}, "metadata": {"status": {"$in": ["completed"]}}}
    )
    assert _names(dataset.items.list(filters=filters)) == ["same.jpg"]


def test_match_pattern_string(platform, dataset):
    """``dtlpy/entities/filters.py`` ``FiltersOperations.MATCH`` sends ``$match`` with the caller's
    pattern; the cookbook ("Working with Hidden Items") matches ``filename`` with ``"*.jpg"``."""
    platform.add_items(dataset, [{"name": "img-001.jpg"}, {"name": "img-a.jpg"}, {"name": "x.png"}])
    regex = dl.Filters()
    regex.add(field="name", values=r"^img-\d+", operator=dl.FiltersOperations.MATCH)
    assert _names(dataset.items.list(filters=regex)) == ["img-001.jpg"]
    wildcard = dl.Filters()
    wildcard.add(field="filename", values="*.jpg", operator=dl.FiltersOperations.MATCH)
    assert _names(dataset.items.list(filters=wildcard)) == ["img-001.jpg", "img-a.jpg"]


class _MatchWork:
    """Counts the work of the local platform's ``$match`` automaton (``emulator.dql._Program``), in
    the units of its budget: per value, one unit per character read (two with assertions) plus
    ``_VISIT_COST`` per program state visited. Work, not wall-clock time: no test depends on the
    machine's speed (the timings are in ``benchmarks/bench_match.py``)."""

    def __init__(self) -> None:
        self.values = 0
        self.max_value_work = 0
        self._visits = 0

    def __enter__(self) -> _MatchWork:
        from emulator import dql

        self._dql, program = dql, dql._Program
        self._step, self._search = program._step, program.search
        counter = self

        def step(program_self, *args):
            result, visited = counter._step(program_self, *args)
            counter._visits += visited
            return result, visited

        def search(program_self, value):
            before = counter._visits
            try:
                return counter._search(program_self, value)
            finally:
                reads = len(value) * (2 if program_self.assertions else 1)
                work = reads + (counter._visits - before) * dql._VISIT_COST
                counter.values += 1
                counter.max_value_work = max(counter.max_value_work, work)

        program._step, program.search = step, search
        return self

    def __exit__(self, *exc) -> None:
        self._dql._Program._step, self._dql._Program.search = self._step, self._search


def test_catastrophic_match_pattern_is_refused_before_any_matching(platform, dataset):
    """Issue 13 §7: a catastrophic ``$match`` pattern answers 400 instead of holding the store's
    lock (the platform's limit is undocumented: emulator/README.md assumption): it is refused from
    its shape, before a single value is matched. A 400 on a paged list is logged and swallowed by
    dtlpy (``entities/paged_entities.py`` ``get_page``), so the request log is checked; a query sent
    meanwhile is answered."""
    platform.add_items(dataset, [{"name": "a" * 40 + "!.jpg"}, {"name": "b.jpg"}])
    answered: list[int] = []

    def other_query() -> None:
        answered.append(dataset.items.list().items_count)

    for pattern in ("^(a+)+$", "(a|aa)+!", "(.*a){30}", r"(\w+)\1"):
        filters = dl.Filters()
        filters.add(field="name", values=pattern, operator=dl.FiltersOperations.MATCH)
        thread = threading.Thread(target=other_query)
        with _MatchWork() as work:
            thread.start()
            pages = dataset.items.list(filters=filters)
            thread.join(timeout=60)  # a bound on a hang, not a speed check
        refused = [r for r in platform.requests if r.status == 400]
        assert refused and pages.items_count == 0
        assert work.max_value_work == 0  # refused from the pattern alone: no value was matched
        assert answered and answered[-1] == 2
        platform.reset_counts()


@pytest.mark.parametrize(
    ("pattern", "name", "matched"),
    [
        ("a*a*a*b", "a" * 1000, False),
        (r"\d+\d+\d+x", "1" * 1000, False),
        (r"\s*\s*\s*!", " " * 1000, False),
        ("[a-z]+[a-z]+[a-z]+!", "a" * 1000, False),
        ("[a-z]+[a-z]+[a-z]+!", "a" * 999 + "!", True),
        ("x[ab]{0,300}c", "x" + "ab" * 499 + "c", False),
        ("." * 999, "x" * 1000, True),
    ],
    ids=["a*a*a*b", "digits", "spaces", "classes", "classes-match", "counted", "long-pattern"],
)
def test_backtracking_prone_match_patterns_are_answered_within_the_work_budget(
    platform, dataset, pattern, name, matched
):
    """Issue 13 §7: no ``$match`` pattern holds the store's lock. Patterns are matched by a
    Thompson automaton with a work budget (emulator/README.md, "``$match`` limits"; assumption:
    the platform's own limits are undocumented), so adjacent overlapping quantifiers that take
    seconds to minutes on a backtracking engine are answered correctly on a 1,000-character value
    within ``dql.MAX_MATCH_WORK`` steps (counted, not timed: ``benchmarks/bench_match.py`` times
    the budget); a query sent meanwhile is answered too."""
    from emulator import dql

    platform.add_items(dataset, [{"name": name}, {"name": "other"}])
    answered: list[int] = []

    def other_query() -> None:
        answered.append(dataset.items.list().items_count)

    filters = dl.Filters()
    filters.add(field="name", values=pattern, operator=dl.FiltersOperations.MATCH)
    thread = threading.Thread(target=other_query)
    with _MatchWork() as work:
        thread.start()
        found = [i.name for i in dataset.items.list(filters=filters).all()]
        thread.join(timeout=60)  # a bound on a hang, not a speed check
    assert all(r.status == 200 for r in platform.requests)
    assert found == ([name] if matched else [])
    assert work.values >= 1 and 0 < work.max_value_work <= dql.MAX_MATCH_WORK
    # linear: at most the value's length times the program's size (visits) plus the reads
    program = dql._compile_pattern(pattern, "name")
    assert work.max_value_work <= 2 * len(name) * (1 + len(program.code) * dql._VISIT_COST)
    assert answered == [2]


def test_a_match_over_its_work_budget_is_refused_before_writing(platform, dataset):
    """A pattern whose automaton would exceed ``dql.MAX_MATCH_WORK`` steps on some value answers
    400 naming ``$match`` (assumption, emulator/README.md) once the budget is spent (counted, not
    timed), and a bulk update with it writes nothing (the matches are computed before any write)."""
    from emulator import dql

    platform.add_items(dataset, [{"name": "ab" * 5000}])
    filters = dl.Filters()
    filters.add(field="name", values="[ab]{0,2000}c", operator=dl.FiltersOperations.MATCH)
    with _MatchWork() as work, pytest.raises(dl.exceptions.BadRequest, match=r"\$match"):
        dataset.items.update(filters=filters, update_values={"user": {"touched": True}})
    # stopped right after the budget: at most one more automaton step than the budget allows
    program = dql._compile_pattern("[ab]{0,2000}c", "name")
    assert dql.MAX_MATCH_WORK < work.max_value_work <= dql.MAX_MATCH_WORK + 2 + len(program.code) * dql._VISIT_COST
    assert platform.write_count() == 0
    assert all("touched" not in d["metadata"].get("user", {}) for d in platform.items_json(dataset.id))


# ------------------------------------------------------------------------------ intersect / except / join
@pytest.fixture
def labelled(platform, dataset):
    """Items car+person, car, person, none (annotations by the real upload endpoint)."""
    ids = platform.add_items(dataset, [{"name": n} for n in ("both.jpg", "car.jpg", "person.jpg", "none.jpg")])
    for item_id, labels in zip(ids, (["car", "person"], ["car"], ["person"], []), strict=True):
        if labels:
            dataset.items.get(item_id=item_id).annotations.upload([_box(label) for label in labels])
    platform.reset_counts()
    return ids


def _on_annotations(label: str) -> dict:
    return {"filter": {"label": label}, "on": {"resource": "annotations", "local": "itemId", "forigen": "id"}}


def test_intersect_keeps_items_of_both_queries(platform, dataset, labelled):
    """Cookbook, "Intersect": ``{"filter", "join": car, "intersect": {"query": {"filter", "join":
    person}}}`` "returns only the items that appear in all queries"."""
    files = {"$and": [{"hidden": False}, {"type": "file"}]}
    query = {
        "filter": files,
        "join": _on_annotations("car"),
        "intersect": {"query": {"filter": files, "join": _on_annotations("person")}},
    }
    assert _names(_custom(dataset, query)) == ["both.jpg"]


def test_except_drops_items_of_the_other_query(platform, dataset, labelled):
    """Cookbook, "Except": ``{"filter", "except": {"query": {"join": person}}}`` "returns only the
    items unique to the first query"."""
    query = {
        "filter": {"$and": [{"hidden": False}, {"type": "file"}]},
        "except": {"query": {"join": _on_annotations("person")}},
    }
    assert _names(_custom(dataset, query)) == ["car.jpg", "none.jpg"]


def test_annotation_query_honours_its_join_on_items(platform, dataset, labelled):
    """``dtlpy/entities/filters.py`` ``add_join`` on an annotations ``Filters`` joins items
    (``on: {"resource": "items", "local": "id", "forigen": "itemId"}``): only annotations of the
    items the join's filter matches."""
    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    filters.add_join(field="name", values="both.jpg")
    annotations = list(dataset.annotations.list(filters=filters).all())
    assert sorted(a.label for a in annotations) == ["car", "person"]
    assert {a.item_id for a in annotations} == {labelled[0]}


def test_item_join_on_annotations(platform, dataset, labelled):
    """https://docs.dataloop.ai/docs/dql-operators, Logical AND / OR: a ``join`` on annotations
    selects the items having an annotation that matches the join's filter."""
    filters = dl.Filters()
    filters.add_join(field="label", values="person")
    assert _names(dataset.items.list(filters=filters)) == ["both.jpg", "person.jpg"]


def test_bulk_update_with_a_join_updates_only_joined_items(platform, dataset, labelled):
    """https://dataloop.ai/docs/api-dql: "Update: Allowing update of metadata for a collection of
    items at once", the collection being the query's (join included). The same filter listed
    without a join just before must not lend its match list to the update."""
    filters = dl.Filters()
    filters.add(field="dir", values="/")
    assert len(_names(dataset.items.list(filters=filters))) == 4
    filters.add_join(field="label", values="car")
    dataset.items.update(filters=filters, update_values={"hasCar": True})
    marked = sorted(i["name"] for i in platform.items_json(dataset.id) if i["metadata"].get("user", {}).get("hasCar"))
    assert marked == ["both.jpg", "car.jpg"]


# ------------------------------------------------------------------------------ dirs and hidden
def test_dtlpy_default_filters_list_files_only_the_server_adds_none(platform, dataset):
    """``dtlpy/entities/filters.py`` ``__add_defaults``: an items ``Filters`` adds ``hidden: false``
    and ``type: "file"``; the cookbook ("Working with Hidden Items") lists directories with
    ``type: "dir"`` or ``use_defaults=False``. The server adds no default of its own: the DQL
    documentation (https://docs.dataloop.ai/docs/api-dql) states none."""
    dataset.items.make_dir(directory="/folder")
    platform.add_items(dataset, [{"name": "a.jpg", "dir": "/folder"}, {"name": "b.jpg"}])
    hidden = dataset.items.get(filepath="/b.jpg")
    hidden.hidden = True
    hidden.update()
    assert _names(dataset.items.list()) == ["a.jpg"]
    dirs = dl.Filters()
    dirs.add(field="type", values="dir")
    assert [i.filename for i in dataset.items.list(filters=dirs).all()] == ["/folder"]
    everything = dl.Filters(use_defaults=False)
    assert _names(dataset.items.list(filters=everything)) == ["a.jpg", "b.jpg", "folder"]
    assert _names(_custom(dataset, {"filter": {}})) == ["a.jpg", "b.jpg", "folder"]
    only_hidden = dl.Filters(use_defaults=False)
    only_hidden.add(field="hidden", values=True)
    assert _names(dataset.items.list(filters=only_hidden)) == ["b.jpg"]


# ------------------------------------------------------------------------------ paging and sort
def test_page_size_is_capped_at_1000(platform, dataset):
    """https://dataloop.ai/docs/api-dql: "Page size: The paging size being used, blocked by 1000
    items per page". dtlpy caps its own ``Filters`` (``__validate_page_size``) but sends a
    ``custom_filter``'s ``pageSize`` as written."""
    platform.add_items(dataset, [{"name": f"{k:04d}.jpg"} for k in range(1100)])
    pages = _custom(dataset, {"filter": {"type": "file"}, "pageSize": 5000, "sort": {"id": "ascending"}})
    assert len(pages.items) == 1000 and pages.items_count == 1100
    assert pages.total_pages_count == 2 and pages.has_next_page is True


def test_exactly_full_last_page_has_no_next_page(platform, dataset):
    """https://docs.dataloop.ai/docs/api-dql (page, pageSize) and dtlpy-documentation's DQL
    introduction, "Understanding Filter Responses" (``totalItemsCount``, ``totalPagesCount``,
    ``hasNextPage``): 4 items in pages of 2 are 2 pages, the second without a next page; 5 are 3."""
    platform.add_items(dataset, [{"name": f"{k}.jpg"} for k in range(4)])
    sort = {"id": "ascending"}
    first = _custom(dataset, {"filter": {"type": "file"}, "page": 0, "pageSize": 2, "sort": sort})
    last = _custom(dataset, {"filter": {"type": "file"}, "page": 1, "pageSize": 2, "sort": sort})
    assert (first.total_pages_count, first.has_next_page, len(first.items)) == (2, True, 2)
    assert (last.total_pages_count, last.has_next_page, len(last.items)) == (2, False, 2)
    platform.add_items(dataset, [{"name": "4.jpg"}])
    last = _custom(dataset, {"filter": {"type": "file"}, "page": 1, "pageSize": 2, "sort": sort})
    assert (last.total_pages_count, last.has_next_page, last.items_count) == (3, True, 5)


def test_default_sort_is_type_then_newest_first(platform, dataset):
    """https://docs.dataloop.ai/docs/api-dql: "Sort is set by default to include the attributes
    "type": "ascending" and "createdAt": "descending"". dtlpy sends no sort for a
    ``custom_filter`` (``entities/filters.py``), so the platform's default applies."""
    for name in ("old.jpg", "mid.jpg", "new.jpg"):
        platform.add_items(dataset, [{"name": name}])
        time.sleep(0.005)  # distinct createdAt
    dataset.items.make_dir(directory="/folder")
    items = _custom(dataset, {"filter": {}}).items
    assert [i.name for i in items] == ["folder", "new.jpg", "mid.jpg", "old.jpg"]


def test_explicit_sort_is_honoured(platform, dataset):
    """Cookbook, "Multi-Field Sorting" / "Size-Based Sorting": ``filters.sort_by(field, direction)``."""
    platform.add_items(dataset, [{"name": n} for n in ("b.jpg", "c.jpg", "a.jpg")])
    filters = dl.Filters()
    filters.sort_by(field="filename", value=dl.FiltersOrderByDirection.DESCENDING)
    assert [i.name for i in dataset.items.list(filters=filters).items] == ["c.jpg", "b.jpg", "a.jpg"]


def test_listing_sorted_by_id_descending_pages_without_gaps_or_repeats(platform, dataset):
    """https://docs.dataloop.ai/docs/api-dql ("sort": any field, "ascending" / "descending") with
    offset paging (page, pageSize): ids descending, each item once across the pages, and an
    ascending sort gives the reverse order."""
    ids = platform.add_items(dataset, [{"name": f"{k:02d}.jpg"} for k in range(7)])
    query = {"filter": {"type": "file"}, "pageSize": 3, "sort": {"id": "descending"}}
    pages = [[i.id for i in _custom(dataset, {**query, "page": page}).items] for page in range(3)]
    listed = [item_id for page in pages for item_id in page]
    assert [len(page) for page in pages] == [3, 3, 1]
    assert listed == sorted(ids, reverse=True)
    ascending = [i.id for i in _custom(dataset, {**query, "pageSize": 10, "sort": {"id": "ascending"}}).items]
    assert ascending == listed[::-1]


# ------------------------------------------------------------------------------ comparisons
def test_numbers_compare_as_numbers(platform, dataset):
    """Cookbook, "Greater Than (gt) and Less Than (lt)": ``metadata.system.height`` ``gt`` a number."""
    platform.add_items(dataset, [{"name": f"{v}.jpg", "metadata": {"user": {"score": v}}} for v in (2, 10, 30)])
    filters = dl.Filters()
    filters.add(field="metadata.user.score", values=9, operator=dl.FiltersOperations.GREATER_THAN)
    assert _names(dataset.items.list(filters=filters)) == ["10.jpg", "30.jpg"]  # 10 > 9 although "10" < "9"


def test_strings_compare_as_text_dates_included(platform, dataset):
    """https://docs.dataloop.ai/docs/dql-operators, Greater / Lower Than: ``createdAt`` ``$gt``
    ``"2019-06-17T23:29:15.775Z"``; the cookbook's date range uses ``isoformat()`` strings."""
    platform.add_items(
        dataset,
        [{"name": n, "metadata": {"user": {"day": d}}} for n, d in (("a.jpg", "2024-05-01"), ("b.jpg", "2024-05-03"))],
    )
    filters = dl.Filters()
    filters.add(field="metadata.user.day", values="2024-05-02T00:00:00", operator=dl.FiltersOperations.GREATER_THAN)
    assert _names(dataset.items.list(filters=filters)) == ["b.jpg"]
    created = dl.Filters()
    created.add(field="createdAt", values="2019-06-17T23:29:15.775Z", operator=dl.FiltersOperations.GREATER_THAN)
    assert _names(dataset.items.list(filters=created)) == ["a.jpg", "b.jpg"]


def test_numeric_strings_compare_with_numbers(platform, dataset):
    """Cookbook, "Size-Based Sorting": files "between 0-5MB" with ``metadata.system.size`` ``gt
    "0"`` and ``lt "5242880"`` (string operands on a number field)."""
    platform.add_items(dataset, [{"name": "small.jpg", "data": b"x" * 10}, {"name": "empty.jpg", "data": b""}])
    filters = dl.Filters()
    filters.add(field="metadata.system.size", values="0", operator="gt")
    filters.add(field="metadata.system.size", values="5242880", operator="lt")
    assert _names(dataset.items.list(filters=filters)) == ["small.jpg"]


def test_exists(platform, dataset):
    """Cookbook, "Exists": ``metadata.user`` ``$exists: true`` finds items with user metadata; the
    "Check Remaining Items in Task" example uses ``$exists: false``."""
    platform.add_items(dataset, [{"name": "with.jpg", "metadata": {"user": {"k": 1}}}, {"name": "without.jpg"}])
    for wanted, expected in ((True, ["with.jpg"]), (False, ["without.jpg"])):
        filters = dl.Filters()
        filters.add(field="metadata.user.k", values=wanted, operator=dl.FiltersOperations.EXISTS)
        assert _names(dataset.items.list(filters=filters)) == expected


def test_in_on_arrays_and_list_values(platform, dataset):
    """dtlpy-documentation ``onboarding/05_metadata_and_filtering.md``: ``metadata.user.tags`` ``$in
    ["outdoor", "daylight"]`` on a tags array; cookbook, "Finding Items by Annotation Status": a
    string value matches an array holding it, a list value only that exact array."""
    platform.add_items(
        dataset,
        [
            {
                "name": "out.jpg",
                "metadata": {"user": {"tags": ["outdoor", "people"], "status": ["completed", "approved"]}},
            },
            {"name": "in.jpg", "metadata": {"user": {"tags": ["indoor"], "status": ["completed"]}}},
        ],
    )
    tags = dl.Filters()
    tags.add(field="metadata.user.tags", values=["outdoor", "daylight"], operator=dl.FiltersOperations.IN)
    assert _names(dataset.items.list(filters=tags)) == ["out.jpg"]
    for value, expected in (
        ("completed", ["in.jpg", "out.jpg"]),
        (["completed"], ["in.jpg"]),
        (["completed", "approved"], ["out.jpg"]),
    ):
        status = dl.Filters()
        status.add(field="metadata.user.status", values=value)
        assert _names(dataset.items.list(filters=status)) == expected


def test_booleans_are_not_numbers(platform, dataset):
    """``annotated: true`` / ``hidden: false`` are booleans in every documented query
    (https://docs.dataloop.ai/docs/api-dql); that ``true`` never equals ``1`` is the emulator's
    assumption (MongoDB type bracketing), listed in emulator/README.md."""
    platform.add_items(
        dataset,
        [{"name": "bool.jpg", "metadata": {"user": {"f": True}}}, {"name": "one.jpg", "metadata": {"user": {"f": 1}}}],
    )
    for value, expected in ((True, ["bool.jpg"]), (1, ["one.jpg"])):
        filters = dl.Filters()
        filters.add(field="metadata.user.f", values=value)
        assert _names(dataset.items.list(filters=filters)) == expected


# ------------------------------------------------------------------------------ updates the app relies on
def test_bulk_update_adds_to_user_metadata(platform, dataset):
    """dtlpy-documentation DQL introduction, "Updating Metadata": ``update_values={'BlackDogs':
    True}  # Will be added to user metadata`` (the other user keys stay)."""
    platform.add_items(dataset, [{"name": "a.jpg", "metadata": {"user": {"keep": 1}}}])
    filters = dl.Filters()
    filters.add(field="name", values="a.jpg")
    dataset.items.update(filters=filters, update_values={"BlackDogs": True})
    (item,) = platform.items_json(dataset.id)
    assert item["metadata"]["user"] == {"keep": 1, "BlackDogs": True}


def test_item_patch_null_deletes_a_key(platform, dataset):
    """``dtlpy/miscellaneous/dict_differ.py``: ``item.update()`` sends the diff with ``None`` for a
    removed key, so a PATCH's ``null`` deletes that key (``repositories/items.py`` ``update``)."""
    (item_id,) = platform.add_items(dataset, [{"name": "a.jpg", "metadata": {"user": {"drop": 1, "keep": 2}}}])
    item = dataset.items.get(item_id=item_id)
    del item.metadata["user"]["drop"]
    item.update()
    assert platform.get_json("items", item_id)["metadata"]["user"] == {"keep": 2}
