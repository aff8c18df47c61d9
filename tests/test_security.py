"""Security: no dynamic code execution or unpickling in the app's code, user strings (name
templates, DQL, subset names) are data, and the local platform only listens on 127.0.0.1.

The source scan walks the ``ast`` of every ``.py`` file in ``main.py``, ``nodes/``,
``emulator/``, ``demo/``, ``benchmarks/`` and ``tools/``. Forbidden:

* calls of the builtins ``eval``, ``exec``, ``compile``, ``__import__`` and ``breakpoint``;
* importing ``pickle``, ``cPickle``, ``dill``, ``marshal``, ``shelve``, ``joblib``,
  ``cloudpickle`` (all unpickle arbitrary objects);
* ``np.load(..., allow_pickle=True)`` / ``np.load`` without ``allow_pickle=False``,
  ``pd.read_pickle``, ``torch.load``, ``yaml.load`` / ``yaml.unsafe_load``;
* ``os.system``, ``os.popen``, ``subprocess.*(..., shell=True)``;
* ``importlib.import_module`` with anything but a string literal.

Allow-list (``ALLOWED``): the local platform's service worker (``emulator/engine/worker.py``)
imports the entry point an app's manifest names, from the app's unpacked codebase. Regular expressions built from user
input (``re.compile`` of DQL wildcards in ``emulator/dql.py``; ``$match`` patterns are parsed
there and run by its own automaton) are not code execution; the emulator is a test tool bound
to 127.0.0.1, and malformed HTTP framing is answered (400 / 413 / 501), never dropped.
"""

from __future__ import annotations

import ast
import builtins
import copy
import socket
import sys
from datetime import datetime
from pathlib import Path

import dtlpy as dl
import pytest

import main
from emulator import LocalPlatform, RecordingProgress
from nodes import create_new_model as cnm
from nodes.data_split import SplitConfig

ROOT = Path(__file__).resolve().parents[1]
SCANNED = [
    ROOT / "main.py",
    *(p for d in ("nodes", "emulator", "demo", "benchmarks", "tools") for p in (ROOT / d).rglob("*.py")),
]
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "marshal", "shelve", "joblib", "cloudpickle"}
#: (relative path, rule) pairs that are allowed, each with the reason in a comment. Empty.
ALLOWED: set[tuple[str, str]] = {
    # the local platform's service worker imports the module an app's manifest names
    # (``entryPoint``) from the app's own unpacked codebase, in its own process: what a runner is for
    ("emulator/engine/worker.py", "call import_module with a computed name"),
}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def scan(source: str, filename: str) -> list[tuple[int, str]]:
    """``(line, rule)`` of every forbidden construct in ``source``.

    Example
    -------
    >>> scan("import pickle\\neval('1')", "x.py")
    [(1, 'import pickle'), (2, 'call eval')]
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append((node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                found.append((node.lineno, f"import {node.module}"))
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            short = name.rsplit(".", 1)[-1]
            if isinstance(node.func, ast.Name) and name in FORBIDDEN_CALLS:
                found.append((node.lineno, f"call {name}"))
            elif name in {"builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__"}:
                found.append((node.lineno, f"call {name}"))
            elif name in {"os.system", "os.popen", "torch.load", "yaml.unsafe_load"} or short == "read_pickle":
                found.append((node.lineno, f"call {name}"))
            elif name == "yaml.load" and "Safe" not in ast.unparse(_keyword(node, "Loader") or ast.Constant(None)):
                found.append((node.lineno, "call yaml.load without SafeLoader"))
            elif name in {"np.load", "numpy.load"}:
                allow = _keyword(node, "allow_pickle")
                if not (isinstance(allow, ast.Constant) and allow.value is False):
                    found.append((node.lineno, "call np.load without allow_pickle=False"))
            elif name.startswith("subprocess."):
                shell = _keyword(node, "shell")
                if not (shell is None or (isinstance(shell, ast.Constant) and shell.value is False)):
                    found.append((node.lineno, f"call {name} with shell"))
            elif name in {"importlib.import_module", "import_module"}:
                if not (node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                    found.append((node.lineno, "call import_module with a computed name"))
    return found


def test_the_scan_covers_the_app_and_finds_what_it_should():
    relative = {p.relative_to(ROOT).as_posix() for p in SCANNED}
    assert {
        "main.py",
        "nodes/data_split/node.py",
        "nodes/create_new_model/naming.py",
        "nodes/compare_models/node.py",
    } <= relative
    assert any(p.startswith("emulator/") for p in relative) and any(p.startswith("demo/") for p in relative)
    bad = "\n".join(
        [
            "import pickle, json",
            "from joblib import load",
            "x = eval(text)",
            "builtins.exec(code)",
            "c = compile(src, 'f', 'exec')",
            "m = __import__(name)",
            "np.load(path)",
            "np.load(path, allow_pickle=True)",
            "np.load(path, allow_pickle=False)",
            "pd.read_pickle(p)",
            "subprocess.run(cmd, shell=True)",
            "subprocess.run(['ls'])",
            "os.system(cmd)",
            "importlib.import_module(user)",
            "importlib.import_module('json')",
            "yaml.load(text)",
            "yaml.load(text, Loader=yaml.SafeLoader)",
            "re.compile(pattern)",
        ]
    )
    lines = [line for line, _ in scan(bad, "bad.py")]
    assert lines == [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14, 16]


def test_no_eval_exec_or_pickle_anywhere_in_the_source():
    findings = []
    for path in SCANNED:
        rel = path.relative_to(ROOT).as_posix()
        for line, rule in scan(path.read_text(encoding="utf-8"), rel):
            if (rel, rule) not in ALLOWED:
                findings.append(f"{rel}:{line}: {rule}")
    assert findings == []


@pytest.fixture
def no_dynamic_code(monkeypatch):
    """Make eval/exec/compile/__import__ raise when called from the app's own modules while a
    node runs (libraries may still use them internally)."""
    app_files = {str(p) for p in SCANNED}
    calls: list[str] = []

    def guard(name):
        original = getattr(builtins, name)

        def wrapper(*args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller in app_files:
                calls.append(f"{name} from {caller}")
                raise AssertionError(f"{name} called from {caller}")
            return original(*args, **kwargs)

        return wrapper

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, guard(name))
    return calls


def test_the_runtime_guard_catches_eval_from_app_code(no_dynamic_code):
    code = compile("eval('1 + 1')", str(ROOT / "main.py"), "exec")  # code that claims to live in main.py
    with pytest.raises(AssertionError, match="eval called from"):
        exec(code, {})  # noqa: S102 - deliberately, to prove the guard works
    assert no_dynamic_code == [f"eval from {ROOT / 'main.py'}"]


HOSTILE = [
    ("{{__import__('os').getcwd()}}-{base_model.name}", "{__import__('os').getcwd()}-base"),
    ("{{base_model.__class__}}", "{base_model.__class__}"),
    ("{{{base_model.name}}}", "{base}"),
    ("v_{dataset.name}_{now:%Y}", "v_images_2025"),
]


@pytest.mark.parametrize(("template", "expected"), HOSTILE)
def test_name_templates_are_rendered_as_text_never_evaluated(template, expected, no_dynamic_code):
    values = cnm.NameValues("base", "id-1", "images", "id-2", "proj")
    assert cnm.render_model_name(template, values, datetime(2025, 1, 31)) == expected
    assert no_dynamic_code == []


def test_substituted_text_is_not_expanded_again(platform, project, dataset, no_dynamic_code):
    platform.add_items(dataset, [{"name": "t.jpg", "metadata": {"system": {"tags": {"train": True}}}}])
    base = platform.create_model(project, "{dataset.id}{{x}}", dataset=dataset, labels=["cat"])
    context = platform.make_context({"modelName": "{base_model.name}-next"}, execution_id="e-sec", project=project)

    new_model, _ = main.ServiceRunner().create_new_model(base_model=base, dataset=dataset, context=context)

    assert new_model.name == "{dataset.id}{{x}}-next"
    assert no_dynamic_code == []


def test_dql_from_the_user_is_sent_as_data(platform, project, dataset, no_dynamic_code):
    """Odd strings inside DQL values reach the platform verbatim (no string building)."""
    odd = "'; db.dropDatabase(); '{$where: 1}"
    platform.add_items(dataset, [{"name": "t.jpg", "dir": "/x", "metadata": {"user": {"note": odd}}}])
    base = platform.create_model(project, "base", dataset=dataset, labels=["cat"])
    train = {"filter": {"$and": [{"metadata.user.note": odd}, {"dir": {"$in": ["/x", "$where"]}}]}}
    context = platform.make_context({"modelName": "{base_model.name}-dql"}, execution_id="e-dql", project=project)

    new_model, _ = main.ServiceRunner().create_new_model(
        base_model=base, dataset=dataset, train_subset=copy.deepcopy(train), context=context
    )

    stored = platform.get_json("models", new_model.id)["metadata"]["system"]["subsets"]["train"]
    assert stored["filter"] == train["filter"]
    assert no_dynamic_code == []


def test_subset_names_cannot_reach_a_query_key():
    """Subset names become tag keys (``metadata.system.tags.<name>``) and DQL field names, so
    anything but ``[A-Za-z0-9_]`` is refused."""
    for name in ("a.b", "$where", "tags.train", "x y", "../t", "t\u0000"):
        with pytest.raises(ValueError, match=r"groups\[0\]\.name"):
            SplitConfig.from_node_config(
                {"groups": [{"name": name, "distribution": 50}, {"name": "b", "distribution": 50}]}
            )


def test_split_node_runs_without_dynamic_code(platform, project, dataset, no_dynamic_code):
    [item_id] = platform.add_items(dataset, [{"name": "a.jpg"}])
    context = platform.make_context(None, project=project)
    main.ServiceRunner().data_split(
        item=dataset.items.get(item_id=item_id), progress=RecordingProgress(), context=context
    )
    assert no_dynamic_code == []


def test_the_emulator_listens_only_on_loopback(platform):
    host, port = platform.server.httpd.socket.getsockname()[:2]
    assert host == "127.0.0.1"
    assert platform.url.startswith(f"http://127.0.0.1:{port}/")
    assert dl.client_api.environment.startswith("http://127.0.0.1:")


def test_the_emulator_is_not_reachable_on_other_addresses(platform):
    port = platform.server.port
    addresses = set()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        pass
    addresses = {a for a in addresses if not a.startswith("127.")}
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    for address in addresses:
        with pytest.raises(OSError), socket.create_connection((address, port), timeout=1):
            pass


def test_a_second_platform_also_binds_loopback_only():
    with LocalPlatform() as other:
        assert other.server.httpd.socket.getsockname()[0] == "127.0.0.1"
        assert other.server.httpd.server_address[0] == "127.0.0.1"


@pytest.mark.parametrize(
    ("header", "what"),
    [(None, "no header"), ("Bearer wrong", "another token"), ("Basic x", "another scheme"), ("Bearer", "empty")],
)
def test_a_request_without_the_issued_token_is_refused_and_writes_nothing(platform, header, what):
    """The local platform requires the bearer token it issued: 401 and no state change otherwise."""
    import json
    import urllib.error
    import urllib.request

    before = len(platform.store.tables["projects"])
    request = urllib.request.Request(
        platform.url + "/projects", data=json.dumps({"name": f"intruder-{what}"}).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    if header is not None:
        request.add_header("Authorization", header)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert len(platform.store.tables["projects"]) == before
    assert platform.requests[-1].status == 401 and platform.write_count() == 0


# ------------------------------------------------------------------------------ HTTP framing
def _raw_exchange(platform, head: str, body: bytes = b"", token: bool = True, read_timeout: float = 5.0) -> bytes:
    """Send one raw HTTP/1.1 request to the local platform; everything answered until it closes."""
    from urllib.parse import urlsplit

    url = urlsplit(platform.url)
    lines = [head, f"Host: {url.hostname}:{url.port}", "Content-Type: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {platform.token}")
    request = ("\r\n".join(lines) + "\r\n").encode()
    with socket.create_connection((url.hostname, url.port), timeout=read_timeout) as conn:
        conn.sendall(request + body)
        answer = b""
        while True:
            try:
                data = conn.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            answer += data
    return answer


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:200]
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("headers", "body", "status", "named"),
    [
        ("Content-Length: abc\r\n", b"{}", 400, b"Content-Length"),
        ("Content-Length: -5\r\n", b"{}", 400, b"Content-Length"),
        ("Content-Length: 1e3\r\n", b"{}", 400, b"Content-Length"),
        ("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n", 400, b"chunk size"),
        ("Transfer-Encoding: chunked\r\n", b"\r\n", 400, b"chunk size"),
        ("Transfer-Encoding: gzip\r\n", b"", 501, b"Transfer-Encoding"),
        ("Content-Length: 999999999999\r\n", b"{}", 413, b"bytes"),
        ("Transfer-Encoding: chunked\r\n", b"FFFFFFFFFF\r\nxx", 413, b"bytes"),
    ],
)
def test_malformed_http_framing_is_answered_not_dropped(platform, headers, body, status, named):
    """RFC 9112 §6: a body whose length cannot be read is a framing error; the local platform
    answers it (400, 413 over ``server.MAX_BODY_BYTES``, 501 an unknown transfer coding, all
    JSON naming the header) and closes the connection, instead of dropping it without an
    answer; nothing is written and the request is counted."""
    before = len(platform.store.tables["projects"])
    answer = _raw_exchange(platform, "POST /api/v1/projects HTTP/1.1\r\n" + headers.rstrip("\r\n"), b"\r\n" + body)
    assert _status(answer) == status
    assert named in answer and b"Connection: close" in answer
    assert len(platform.store.tables["projects"]) == before and platform.write_count() == 0
    assert platform.requests[-1].status == status


def test_a_well_framed_raw_request_still_works(platform):
    body = b'{"name": "raw-framing-ok"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    answer = _raw_exchange(
        platform, "POST /api/v1/projects HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close", b"\r\n" + chunked
    )
    assert _status(answer) == 200 and b"raw-framing-ok" in answer


def test_the_token_is_checked_before_the_body_is_read(platform):
    """A client without the token cannot make the server read its body: it announces 100 MB,
    sends none of it, and is answered 401 at once (the connection then closes)."""
    # none of the 100 MB is sent: an answer at all (before read_timeout, a bound on a hang, not a
    # speed check) shows the server did not wait for the body
    answer = _raw_exchange(
        platform, "POST /api/v1/projects HTTP/1.1\r\nContent-Length: 100000000", b"\r\n", token=False, read_timeout=30
    )
    assert _status(answer) == 401 and b"Connection: close" in answer
    assert platform.requests[-1].status == 401 and platform.write_count() == 0
