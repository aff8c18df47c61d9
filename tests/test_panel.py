"""The Data Split node config panel (``panels/dataSplit``) in a real headless Chromium.

A small host page (``tests/panel_host``) plays the pipeline editor's side of the
``@dataloop-ai/jssdk`` xFrame protocol: it embeds the committed panel build, joins its channel,
sends the ``nodeConfig`` event and records every ``updateNodeConfig`` the panel sends back. The
host speaks the protocol either by hand (the wire format written out) or through the SDK's own
host side (``XFrameManager``); the main scenarios run with both. The
configs sent are checked against the shared JSON Schema and parsed with the node's own parser
(``nodes.data_split.SplitConfig.from_node_config``), so panel and node cannot drift apart.

Needs Debian's Chromium at ``/usr/bin/chromium`` (``apt-get install chromium``); skipped without it.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[1]
PANEL_DIR = REPO / "panels" / "dataSplit"
SCHEMA = json.loads((REPO / "nodes" / "schemas" / "data_split_config.json").read_text())
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOST_PATH = "/tests/panel_host/index.html"
WAIT_S = 10.0

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium not installed at /usr/bin/chromium (apt-get install -y chromium)"
)


# ---------------------------------------------------------------- fixtures and helpers


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """The repository served read-only on 127.0.0.1 (panel build and host page)."""
    handler = functools.partial(_QuietHandler, directory=str(REPO))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_host(browser, server_url):
    """Open the host page (optionally with a stored node / settings); returns (page, panel frame)."""
    pages = []

    def _open(node: dict | None = None, settings: dict | None = None, transport: str = "hand-written"):
        query = {"transport": transport}
        if node is not None:
            query["node"] = json.dumps(node)
        if settings is not None:
            query["settings"] = json.dumps(settings)
        page = browser.new_page(viewport={"width": 900, "height": 800})
        pages.append(page)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server_url}{HOST_PATH}?{urllib.parse.urlencode(query)}")
        page.wait_for_function("window.host && window.host.updates.length > 0", timeout=WAIT_S * 1000)
        page.page_errors = errors
        assert page.evaluate("window.host.transport") == transport
        return page, page.frame_locator("#panel-frame")

    yield _open
    for page in pages:
        assert page.page_errors == [], page.page_errors
        page.close()


def updates(page) -> list[dict]:
    return page.evaluate("window.host.updates")


def wait_for_update(page, check: Callable[[dict], bool], what: str) -> dict:
    """Poll the updateNodeConfig payloads until the last one satisfies ``check``; return it."""
    deadline = time.monotonic() + WAIT_S
    last = None
    while time.monotonic() < deadline:
        sent = updates(page)
        last = sent[-1] if sent else None
        if last is not None and check(last):
            return last
        time.sleep(0.05)
    pytest.fail(f"no updateNodeConfig with {what}; last payload: {json.dumps(last, indent=1)}")


def config_of(payload: dict) -> dict:
    return payload["metadata"]["customNodeConfig"]


def groups_of(payload: dict) -> list[tuple[str, float]]:
    return [(g["name"], g["distribution"]) for g in config_of(payload)["groups"]]


def assert_matches_schema(config: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(config)


def node_parser():
    """The node's own config parser (``SplitConfig.from_node_config``)."""
    data_split = pytest.importorskip("nodes.data_split")
    if not hasattr(data_split, "SplitConfig"):
        pytest.skip("nodes.data_split.SplitConfig has not landed yet")
    return data_split.SplitConfig.from_node_config


# ---------------------------------------------------------------- build


def test_committed_build_matches_its_sources_and_the_shared_schema():
    """build-info.json holds the hashes of every build input; a source or schema edit without
    `npm run build` (panels/dataSplit/src) makes this fail."""
    info = json.loads((PANEL_DIR / "build-info.json").read_text())
    assert "../../nodes/schemas/data_split_config.json" in info["inputs"]
    stale = [
        rel
        for rel, digest in info["inputs"].items()
        if hashlib.sha256((PANEL_DIR / rel).read_bytes()).hexdigest() != digest
    ]
    assert stale == [], f"rebuild the panel (cd panels/dataSplit/src && npm ci && npm run build): {stale} changed"
    for built in ("index.html", "assets/panel.js", "assets/panel.css"):
        assert (PANEL_DIR / built).stat().st_size > 0
    assert (PANEL_DIR / "src" / "index.html").read_text() == (PANEL_DIR / "index.html").read_text()


# ---------------------------------------------------------------- browser


TRANSPORTS = pytest.mark.parametrize("transport", ["hand-written", "sdk"])


@needs_chromium
@TRANSPORTS
def test_loading_a_node_without_config_sends_the_defaults(open_host, transport):
    page, panel = open_host(transport=transport)
    first = updates(page)[0]
    config = config_of(first)

    assert config["name"] == "Model Data Split"
    assert groups_of(first) == [("train", 80), ("validation", 10), ("test", 10)]
    assert config["itemMetadata"] is True
    assert config["distributeEqually"] is False
    assert config["seed"] is None
    assert config["validation"] == {"valid": True, "errors": []}
    assert len({g["id"] for g in config["groups"]}) == 3
    assert [(p["action"], p["portPercentage"], p["portId"]) for p in config["ports"]] == [
        ("train", 80, "out-0001"),
        ("validation", 10, "out-0001"),
        ("test", 10, "out-0001"),
    ]
    # the rest of the node descriptor comes back untouched; the output port keeps its id
    assert first["id"] == "node-0001" and first["inputs"][0]["portId"] == "in-0001"
    assert first["metadata"]["position"] == {"x": 100, "y": 200, "z": 0}
    assert first["outputs"] == [
        {
            "portId": "out-0001",
            "nodeId": "node-0001",
            "type": "Item",
            "name": "item",
            "displayName": "item",
            "actions": ["train", "validation", "test"],
        }
    ]
    assert_matches_schema(config)
    parsed = node_parser()(config)
    assert parsed.shares == {"train": 80.0, "validation": 10.0, "test": 10.0}
    assert parsed.item_metadata is True and parsed.seed == 0

    # the panel shows what it sent, and asked the host for its settings once
    assert panel.get_by_test_id("sum").inner_text() == "100%"
    assert panel.get_by_test_id("validation").get_attribute("data-valid") == "true"
    assert page.evaluate("window.host.syncRequests.map(r => r.scope + ':' + r.crud)") == ["settings:read"]


@needs_chromium
@TRANSPORTS
def test_edited_names_and_distributions_are_sent(open_host, transport):
    page, panel = open_host(transport=transport)
    panel.get_by_test_id("group-name-0").fill("train set-A!")  # sanitised to [A-Za-z0-9_]
    panel.get_by_test_id("group-name-2").fill("holdout")
    panel.get_by_test_id("group-distribution-0").fill("70")
    panel.get_by_test_id("group-distribution-1").fill("20.5")
    panel.get_by_test_id("group-distribution-2").fill("9.5")
    panel.get_by_test_id("seed").fill("42")
    panel.get_by_test_id("item-metadata").uncheck()
    panel.get_by_test_id("node-name").fill("  Split v2 ")

    want = [("trainsetA", 70), ("validation", 20.5), ("holdout", 9.5)]
    payload = wait_for_update(
        page, lambda p: groups_of(p) == want and config_of(p)["name"] == "Split v2", f"groups {want}"
    )
    config = config_of(payload)
    assert panel.get_by_test_id("group-name-0").input_value() == "trainsetA"
    assert config["seed"] == 42 and config["itemMetadata"] is False
    assert config["validation"] == {"valid": True, "errors": []}
    assert payload["outputs"][0]["actions"] == ["trainsetA", "validation", "holdout"]
    assert [p["action"] for p in config["ports"]] == ["trainsetA", "validation", "holdout"]
    assert [p["portPercentage"] for p in config["ports"]] == [70, 20.5, 9.5]
    # group ids are stable across edits (the platform keys rows by them)
    assert [g["id"] for g in config["groups"]] == [g["id"] for g in config_of(updates(page)[0])["groups"]]
    assert panel.get_by_test_id("sum").inner_text() == "100%"

    assert_matches_schema(config)
    parsed = node_parser()(config)
    assert parsed.shares == {"trainsetA": 70.0, "validation": 20.5, "holdout": 9.5}
    assert parsed.seed == 42 and parsed.item_metadata is False and parsed.node_name == "Split v2"


@needs_chromium
def test_invalid_sum_shows_the_error_and_marks_the_config_invalid(open_host):
    page, panel = open_host()
    panel.get_by_test_id("group-distribution-0").fill("50")

    payload = wait_for_update(page, lambda p: groups_of(p)[0] == ("train", 50), "train at 50")
    config = config_of(payload)
    assert config["validation"] == {
        "valid": False,
        "errors": [{"message": "Distribution must equal 100%", "suggestion": "Please adjust the distribution"}],
    }
    validation = panel.get_by_test_id("validation")
    assert validation.get_attribute("data-valid") == "false"
    assert "Distribution must equal 100%" in validation.inner_text()
    assert "Please adjust the distribution" in validation.inner_text()
    assert panel.get_by_test_id("sum").inner_text() == "70%"
    assert panel.get_by_test_id("sum-status").inner_text() == "30% remaining"
    assert "invalid" in panel.get_by_test_id("group-distribution-0").get_attribute("class")

    # over 100: a value above the maximum is clamped to 100 when the field is left
    panel.get_by_test_id("group-distribution-0").fill("250")
    panel.get_by_test_id("group-distribution-0").blur()
    payload = wait_for_update(page, lambda p: groups_of(p)[0] == ("train", 100), "train clamped to 100")
    assert panel.get_by_test_id("group-distribution-0").input_value() == "100"
    assert panel.get_by_test_id("sum-status").inner_text() == "20% exceeding"
    assert config_of(payload)["validation"]["valid"] is False

    # still a schema-valid document, but the node refuses to run it
    assert_matches_schema(config_of(payload))
    with pytest.raises(ValueError, match=r"distribution.*not 100"):
        node_parser()(config_of(payload))

    # fixing the sum clears the error
    panel.get_by_test_id("group-distribution-0").fill("80")
    payload = wait_for_update(page, lambda p: config_of(p)["validation"]["valid"], "a valid config again")
    assert groups_of(payload) == [("train", 80), ("validation", 10), ("test", 10)]
    assert panel.get_by_test_id("validation").inner_text().strip() == "Configuration is valid"


@needs_chromium
def test_add_remove_and_distribute_equally(open_host):
    page, panel = open_host()
    panel.get_by_test_id("group-distribution-0").fill("60")  # 20% left for the new group
    panel.get_by_test_id("add-group").click()
    payload = wait_for_update(page, lambda p: len(groups_of(p)) == 4, "4 groups")
    assert groups_of(payload) == [("train", 60), ("validation", 10), ("test", 10), ("group_4", 20)]
    assert config_of(payload)["validation"]["valid"] is True

    panel.get_by_test_id("distribute-equally").check()
    payload = wait_for_update(page, lambda p: config_of(p)["distributeEqually"], "distributeEqually")
    assert [d for _, d in groups_of(payload)] == [25, 25, 25, 25]
    assert panel.get_by_test_id("group-distribution-0").is_disabled()

    panel.get_by_test_id("add-group").click()
    payload = wait_for_update(page, lambda p: len(groups_of(p)) == 5, "5 groups")
    assert [d for _, d in groups_of(payload)] == [20, 20, 20, 20, 20]
    assert panel.get_by_test_id("add-group").is_disabled()  # at most 5

    for _ in range(2):
        panel.get_by_test_id("remove-group-1").click()
    payload = wait_for_update(page, lambda p: len(groups_of(p)) == 3, "3 groups")
    assert groups_of(payload) == [("train", 33.33), ("group_4", 33.33), ("group_5", 33.34)]  # remainder last
    assert payload["outputs"][0]["actions"] == ["train", "group_4", "group_5"]

    panel.get_by_test_id("remove-group-2").click()
    payload = wait_for_update(page, lambda p: len(groups_of(p)) == 2, "2 groups")
    assert [d for _, d in groups_of(payload)] == [50, 50]
    assert panel.get_by_test_id("remove-group-0").is_disabled()  # at least 2

    config = config_of(payload)
    assert_matches_schema(config)
    assert node_parser()(config).shares == {"train": 50.0, "group_4": 50.0}


@needs_chromium
def test_a_stored_config_is_loaded_and_sent_back_normalised(open_host):
    stored = {
        "name": "Three way",
        "distributeEqually": False,
        "groups": [
            {"id": "g1", "name": "Group_1", "distribution": "33.33"},
            {"id": "g2", "name": "Group_2", "distribution": 33.33},
            {"id": "g3", "name": "Group_3", "distribution": 33.34},
        ],
        "itemMetadata": False,
        "seed": 7,
        "validation": {"valid": True, "errors": []},
    }
    node = {
        "id": "n-9",
        "name": "Three way",
        "outputs": [{"portId": "p-9", "name": "item", "type": "Item", "actions": ["Group_1"]}],
        "metadata": {"customNodeConfig": stored},
    }
    page, panel = open_host(node=node)
    payload = updates(page)[0]
    config = config_of(payload)
    assert groups_of(payload) == [("Group_1", 33.33), ("Group_2", 33.33), ("Group_3", 33.34)]
    assert [g["id"] for g in config["groups"]] == ["g1", "g2", "g3"]
    assert (config["name"], config["itemMetadata"], config["seed"]) == ("Three way", False, 7)
    assert payload["outputs"][0]["portId"] == "p-9"
    assert payload["outputs"][0]["actions"] == ["Group_1", "Group_2", "Group_3"]
    assert panel.get_by_test_id("node-name").input_value() == "Three way"
    assert panel.get_by_test_id("seed").input_value() == "7"
    assert not panel.get_by_test_id("item-metadata").is_checked()
    assert panel.get_by_test_id("group-distribution-2").input_value() == "33.34"

    assert_matches_schema(config)
    parsed = node_parser()(config)
    assert parsed.shares == {"Group_1": 33.33, "Group_2": 33.33, "Group_3": 33.34} and parsed.seed == 7


@needs_chromium
def test_name_group_and_seed_errors_come_with_suggestions(open_host):
    page, panel = open_host()
    panel.get_by_test_id("node-name").fill("bad/name")
    panel.get_by_test_id("group-name-1").fill("")
    panel.get_by_test_id("group-name-2").fill("train")
    panel.get_by_test_id("seed").fill("-3")

    payload = wait_for_update(page, lambda p: len(config_of(p)["validation"]["errors"]) == 4, "four errors")
    assert config_of(payload)["validation"] == {
        "valid": False,
        "errors": [
            {"message": "Node name error", "suggestion": "Please adjust the node name"},
            {"message": "Group name is required", "suggestion": "Please adjust the group name"},
            {"message": "Group names must be unique", "suggestion": "Please rename the duplicate groups"},
            {
                "message": "Seed must be a whole number from 0 to 4294967295",
                "suggestion": "Please adjust the seed or leave it empty",
            },
        ],
    }
    assert config_of(payload)["seed"] is None  # an unusable seed is never stored
    assert payload["outputs"][0]["actions"] == ["train", "train"]  # empty names are not actions
    text = panel.get_by_test_id("validation").inner_text()
    for message in ("Node name error", "Group name is required", "Group names must be unique", "Please adjust"):
        assert message in text
    assert panel.locator("#node-name-error").is_visible()
    with pytest.raises(ValueError):
        node_parser()(config_of(payload))


@needs_chromium
def test_host_settings_readonly_and_dark_theme(open_host):
    page, panel = open_host(settings={"theme": "dark", "readonly": "view"})
    panel.locator("html.dark").wait_for(state="attached", timeout=WAIT_S * 1000)
    for test_id in ("node-name", "group-name-0", "group-distribution-0", "add-group", "seed", "item-metadata"):
        assert panel.get_by_test_id(test_id).is_disabled(), test_id
    assert [u["metadata"]["customNodeConfig"]["validation"]["valid"] for u in updates(page)] == [True]


def _group(name, distribution, **extra):
    return {"id": name or "x", "name": name, "distribution": distribution, **extra}


TWO_GROUPS = [_group("a", 60), _group("b", 40)]
SCHEMA_CASES = {
    "minimal": {"groups": TWO_GROUPS},
    "full": {
        "name": "Split-1 ok",
        "distributeEqually": False,
        "groups": TWO_GROUPS,
        "itemMetadata": True,
        "seed": 4294967295,
        "validation": {"valid": True, "errors": [{"message": "m", "suggestion": "s"}]},
        "ports": [{"portId": "p", "action": "a", "name": "item", "type": "Item", "portPercentage": 60}],
    },
    "string distribution": {"groups": [_group("a", " 12.5 "), _group("b", "87.5")]},
    "null seed": {"groups": TWO_GROUPS, "seed": None},
    "no groups": {"name": "x"},
    "one group": {"groups": [_group("a", 100)]},
    "six groups": {"groups": [_group(f"g{i}", 10) for i in range(6)]},
    "negative seed": {"groups": TWO_GROUPS, "seed": -1},
    "seed too big": {"groups": TWO_GROUPS, "seed": 4294967296},
    "float seed": {"groups": TWO_GROUPS, "seed": 1.5},
    "bad node name": {"groups": TWO_GROUPS, "name": "a/b"},
    "empty group name": {"groups": [_group("", 60), _group("b", 40)]},
    "group name with space": {"groups": [_group("a b", 60), _group("b", 40)]},
    "group name too long": {"groups": [_group("a" * 65, 60), _group("b", 40)]},
    "distribution over 100": {"groups": [_group("a", 101), _group("b", 0)]},
    "distribution text": {"groups": [_group("a", "sixty"), _group("b", 40)]},
    "bad itemMetadata": {"groups": TWO_GROUPS, "itemMetadata": "yes"},
    "bad validation": {"groups": TWO_GROUPS, "validation": {"valid": "no"}},
    "bad port": {"groups": TWO_GROUPS, "ports": [{"portPercentage": "60"}]},
}


@needs_chromium
def test_the_bundled_validator_agrees_with_the_shared_schema(open_host):
    """The panel's build-time compiled validator and Python's jsonschema accept the same configs."""
    page, _ = open_host()
    frame = page.frame_locator("#panel-frame").locator("html")
    panel_errors = frame.evaluate(
        "(_, cases) => Object.fromEntries(Object.entries(cases).map(([k, c]) => "
        "[k, window.dataSplitPanel.validateConfig(c)]))",
        SCHEMA_CASES,
    )
    validator = jsonschema.Draft202012Validator(SCHEMA)
    verdicts = {name: (panel_errors[name] == [], validator.is_valid(case)) for name, case in SCHEMA_CASES.items()}
    assert {name: v for name, v in verdicts.items() if v[0] != v[1]} == {}
    assert sum(python_ok for _, python_ok in verdicts.values()) == 4  # the first four cases are valid
    assert panel_errors["negative seed"][0]["message"].startswith("Invalid seed:")
    assert panel_errors["group name with space"][0]["message"].startswith("Invalid groups[0].name:")


@needs_chromium
def test_a_second_node_config_replaces_the_first(open_host):
    """The editor reuses the panel when another Data Split node is selected."""
    page, panel = open_host()
    panel.get_by_test_id("group-distribution-0").fill("75")  # pending edit of the first node
    other = {
        "id": "node-2",
        "outputs": [{"portId": "out-2", "name": "item", "type": "Item"}],
        "metadata": {"customNodeConfig": {"name": "Other", "groups": [_group("x", 50), _group("y", 50)]}},
    }
    page.evaluate("node => window.host.sendNodeConfig(node)", other)
    payload = wait_for_update(page, lambda p: p["id"] == "node-2", "the second node")
    assert groups_of(payload) == [("x", 50), ("y", 50)]
    assert payload["outputs"][0]["portId"] == "out-2" and payload["outputs"][0]["actions"] == ["x", "y"]
    assert panel.get_by_test_id("node-name").input_value() == "Other"
    time.sleep(0.4)  # longer than the panel's send delay: nothing of the first node arrives late
    assert updates(page)[-1]["id"] == "node-2"


@needs_chromium
def test_a_stored_config_with_too_few_groups_is_flagged_until_fixed(open_host):
    node = {"id": "n-1", "metadata": {"customNodeConfig": {"groups": [_group("all", 100)]}}}
    page, panel = open_host(node=node)
    first = config_of(updates(page)[0])
    assert first["validation"] == {
        "valid": False,
        "errors": [{"message": "The node needs 2 to 5 groups", "suggestion": "Please add or remove groups"}],
    }
    assert first["name"] == "Model Data Split" and first["itemMetadata"] is True  # missing fields: defaults
    assert panel.get_by_test_id("remove-group-0").is_disabled()

    panel.get_by_test_id("distribute-equally").check()
    panel.get_by_test_id("add-group").click()
    payload = wait_for_update(page, lambda p: config_of(p)["validation"]["valid"], "a valid config")
    assert groups_of(payload) == [("all", 50), ("group_2", 50)]
    assert node_parser()(config_of(payload)).shares == {"all": 50.0, "group_2": 50.0}


@needs_chromium
def test_the_config_sent_drives_the_node_on_the_local_platform(open_host, platform, project, dataset):
    """End to end: what the panel stores is what main.ServiceRunner.data_split routes by."""
    import main
    from emulator import RecordingProgress

    page, panel = open_host()
    panel.get_by_test_id("group-name-1").fill("holdout")
    panel.get_by_test_id("group-distribution-0").fill("0")
    panel.get_by_test_id("group-distribution-1").fill("100")
    panel.get_by_test_id("group-distribution-2").fill("0")
    panel.get_by_test_id("seed").fill("5")
    payload = wait_for_update(
        page,
        lambda p: groups_of(p) == [("train", 0), ("holdout", 100), ("test", 0)] and config_of(p)["seed"] == 5,
        "train 0 / holdout 100 / test 0, seed 5",
    )
    config = config_of(payload)
    assert config["validation"]["valid"] is True

    item_ids = platform.add_items(dataset, [{"name": f"img-{i}.jpg"} for i in range(3)])
    context = platform.make_context(node_config=config, project=project)
    progress = RecordingProgress()
    runner = main.ServiceRunner()
    for item_id in item_ids:
        try:
            runner.data_split(item=dataset.items.get(item_id=item_id), progress=progress, context=context)
        except NotImplementedError:
            pytest.skip("nodes.data_split.run_node has not landed yet")
    assert progress.actions == ["holdout"] * 3
    for item_id in item_ids:
        assert dataset.items.get(item_id=item_id).metadata["system"]["tags"] == {"holdout": True}
