"""HTTP front of the local platform: a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 serving the
part of the Dataloop REST API (``/api/v1``) that dtlpy 1.126.5 sends for the app.

Each request is authenticated (bearer token, before its body is read), framed (400 / 413 / 501
on a malformed body), routed by ``emulator/routes.py`` to ``emulator/responses.py``, counted
by route template (:class:`RequestLog`) and may be failed or delayed on purpose
(:meth:`RequestLog.fail_next`). Errors are JSON ``{"message", "status"}``; the status codes are
listed in emulator/README.md.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emulator.responses import Answer, Request
from emulator.routes import Router
from emulator.store import ApiError, Store

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
#: Largest request body read (assumption: the platform's cap is undocumented); larger → 413.
MAX_BODY_BYTES = 256 * 1024 * 1024
_DIGITS = re.compile(r"\A[0-9]{1,19}\Z")
_HEX = re.compile(rb"\A[0-9a-fA-F]{1,16}\Z")


@dataclass
class FailureRule:
    method: str
    path_regex: re.Pattern[str]
    status: int | None
    times: int
    delay_s: float
    message: str


@dataclass(frozen=True)
class LoggedRequest:
    """One served request: method, templated route, status, whether it changed server state."""

    method: str
    route: str
    status: int
    wrote: bool
    path: str


class RequestLog:
    """Counts of served requests and the fault-injection rules, shared by all handler threads.

    Example
    -------
    >>> log = RequestLog()
    >>> log.record(LoggedRequest("GET", "/items/{id}", 200, False, "/items/x"))
    >>> log.counts()["GET /items/{id}"]
    1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._rules: list[FailureRule] = []

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def counts(self) -> Counter:
        with self._lock:
            return Counter(f"{e.method} {e.route}" for e in self._entries)

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def write_count(self) -> int:
        with self._lock:
            return sum(1 for e in self._entries if e.wrote)

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def fail_next(
        self, method: str, path_regex: str, status: int | None = 503, times: int = 1, delay_s: float = 0
    ) -> None:
        if times < 1:
            raise ValueError(f"fail_next times: {times!r} must be >= 1; example: times=1")
        if delay_s < 0:
            raise ValueError(f"fail_next delay_s: {delay_s!r} must be >= 0; example: delay_s=0.5")
        if status is not None and not 100 <= int(status) <= 599:
            raise ValueError(f"fail_next status: {status!r} is not an HTTP status; example: status=503")
        rule = FailureRule(
            method=method.upper(),
            path_regex=re.compile(path_regex),
            status=None if status is None else int(status),
            times=int(times),
            delay_s=float(delay_s),
            message=f"injected failure for {method.upper()} {path_regex}",
        )
        with self._lock:
            self._rules.append(rule)

    def clear_failures(self) -> None:
        with self._lock:
            self._rules.clear()

    def take_failure(self, method: str, path: str) -> FailureRule | None:
        """The first rule matching this request (its remaining count decremented), else None."""
        full = API_PREFIX + path
        with self._lock:
            for rule in self._rules:
                if rule.method in (method, "*") and (rule.path_regex.search(path) or rule.path_regex.search(full)):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def pending_failures(self) -> int:
        with self._lock:
            return sum(rule.times for rule in self._rules)


def parse_multipart(content_type: str, data: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Fields of a ``multipart/form-data`` body: ``{name: (filename or None, bytes)}``.

    Example
    -------
    >>> body = b'--b\\r\\nContent-Disposition: form-data; name="path"\\r\\n\\r\\n/a.txt\\r\\n--b--\\r\\n'
    >>> parse_multipart('multipart/form-data; boundary=b', body)
    {'path': (None, b'/a.txt')}
    """
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + data
    )
    if not message.is_multipart():
        raise ApiError(400, "malformed multipart/form-data body")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        fields[str(name)] = (part.get_filename(), payload if payload is not None else b"")
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body go out as separate writes; with Nagle on, each
    # keep-alive response waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "DataloopEmulator/1.0"
    router: Router
    store: Store
    log: RequestLog
    #: the bearer token the platform issued; every API request must carry it
    token: str | None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s - %s", self.address_string(), format % args)

    def _framing_error(self, status: int, message: str) -> ApiError:
        # the rest of the body cannot be found reliably: answer, then close the connection
        self.close_connection = True
        return ApiError(status, message)

    def _read_body(self) -> bytes:
        """The request body (``Content-Length`` or ``chunked``), at most :data:`MAX_BODY_BYTES`.

        RFC 9112 §6: a request with neither header has no body; a ``Content-Length`` that is not
        a non-negative decimal, or a chunk size that is not hexadecimal, is an unrecoverable
        framing error (400, connection closed); a body over the cap answers 413 (assumption: the
        platform's own cap is undocumented); another transfer coding answers 501 (RFC 9112 §6.1).
        """
        encoding = self.headers.get("Transfer-Encoding", "").strip().lower()
        if encoding:
            if encoding != "chunked":
                raise self._framing_error(501, f"Transfer-Encoding {encoding!r} is not supported (only 'chunked')")
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024).strip()
                size_text = size_line.split(b";")[0].strip()
                if not size_text or not _HEX.match(size_text):
                    raise self._framing_error(400, f"malformed chunk size line {size_line[:40]!r}")
                size = int(size_text, 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers until an empty line
                        pass
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise self._framing_error(413, f"request body over {MAX_BODY_BYTES} bytes")
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise self._framing_error(400, "chunked body ended early")
                chunks.append(chunk)
                self.rfile.readline(1024)
            return b"".join(chunks)
        header = self.headers.get("Content-Length")
        if header is None:
            return b""
        if not _DIGITS.match(header.strip()):
            raise self._framing_error(400, f"Content-Length must be a non-negative integer, got {header[:40]!r}")
        length = int(header.strip())
        if length > MAX_BODY_BYTES:
            raise self._framing_error(413, f"request body of {length} bytes is over {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise self._framing_error(400, f"request body ended after {len(body)} of {length} bytes")
        return body

    def _has_body(self) -> bool:
        return bool(self.headers.get("Transfer-Encoding")) or (self.headers.get("Content-Length") or "0").strip() != "0"

    def _handle(self) -> None:
        method = self.command
        split = urlsplit(self.path)
        path = split.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        path = path.rstrip("/") or "/"
        query = parse_qs(split.query)
        route, params, path_known = self.router.resolve(method, path)
        template = route.template if route else _template_of(path)
        if not self._authorized():
            # Dataloop's REST API authenticates every request with "Authorization: Bearer <JWT>"
            # (developers.dataloop.ai, "Authentication"; dtlpy services/api_client.py auth header)
            # and answers 401 without a valid one.
            # Checked before the body is read: the unread body ends the connection.
            error = ApiError(401, f"unauthorized: {method} {path} needs 'Authorization: Bearer <token>'")
            if self._has_body():
                self.close_connection = True
            self.log.record(LoggedRequest(method, template, 401, False, path))
            self._send(Answer(status=401, body={"message": error.message, "status": 401}))
            return
        try:
            raw = self._read_body()
        except ApiError as error:
            self.log.record(LoggedRequest(method, template, error.status, False, path))
            self._send(Answer(status=error.status, body={"message": error.message, "status": error.status}))
            return
        rule = self.log.take_failure(method, path + (f"?{split.query}" if split.query else ""))
        if rule is not None:
            if rule.delay_s:
                time.sleep(rule.delay_s)
            if rule.status is not None:
                # Count before answering: a client that has its answer must see the request counted.
                self.log.record(LoggedRequest(method, template, rule.status, False, path))
                self._send(Answer(status=rule.status, body={"message": rule.message, "status": rule.status}))
                return
        try:
            if route is None:
                status = 405 if path_known else 404
                raise ApiError(status, f"no route for {method} {path}")
            body = self._decode(raw)
            answer = route.handler(self.store, Request(params, query, body))
        except ApiError as error:
            message = error.message
            if error.status == 501:  # a known route the emulator does not serve: name it
                message = f"{method} {template}: {message}"
            answer = Answer(status=error.status, body={"message": message, "status": error.status})
        except Exception as error:  # a bug in the emulator: answer 500 (not retried by dtlpy) and log it
            logger.exception("emulator error on %s %s", method, path)
            answer = Answer(status=500, body={"message": f"emulator error: {error!r}", "status": 500})
        self.log.record(LoggedRequest(method, template, answer.status, answer.wrote, path))
        self._send(answer)

    def _authorized(self) -> bool:
        if self.token is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip(), self.token)

    def _decode(self, raw: bytes) -> Any:
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return {"__form__": parse_multipart(content_type, raw)}
        if not raw:
            return None
        if content_type.startswith("application/x-www-form-urlencoded"):
            return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8")).items()}
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "request body is not valid JSON") from None
        except RecursionError:  # assumption: the platform's answer to absurd nesting is undocumented
            raise ApiError(400, "request body is nested too deeply to read") from None

    def _send(self, answer: Answer) -> None:
        if answer.raw is not None:
            payload = answer.raw
        else:
            payload = json.dumps(answer.body).encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_PATCH = _handle
    do_DELETE = _handle


_ID_SEGMENT = re.compile(r"\A[0-9a-fA-F]{24}\Z")


def _template_of(path: str) -> str:
    """Route template of an unknown path: 24-hex segments become ``{id}``."""
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


class EmulatorServer:
    """The threaded HTTP server on 127.0.0.1 (a free port) serving one :class:`Store`.

    Example
    -------
    >>> server = EmulatorServer(Store()).start()
    >>> server.base_url.startswith("http://127.0.0.1:")
    True
    >>> server.stop()
    """

    def __init__(self, store: Store, log: RequestLog | None = None, token: str | None = None) -> None:
        self.store = store
        self.log = log or RequestLog()
        self.token = token
        handler = type("Handler", (_Handler,), {"router": Router(), "store": store, "log": self.log, "token": token})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}{API_PREFIX}"
        self.store.base_url = self.base_url
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="dataloop-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
