"""ChatKit wire client and validator, with openai-chatkit's pydantic models as the oracle.

Every request body sent and every SSE payload / JSON body received is validated against
`chatkit.types`. pydantic ignores unknown keys, so each payload is also diffed against the
model's full dump: a key the model does not know (a typo such as `contentIndex`) fails.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter

from chatkit import types as ck

REQ = TypeAdapter(ck.ChatKitReq)
EVENT = TypeAdapter(ck.ThreadStreamEvent)
THREAD = TypeAdapter(ck.Thread)
THREAD_PAGE = TypeAdapter(ck.Page[ck.Thread])
ITEM_PAGE = TypeAdapter(ck.Page[ck.ThreadItem])
ATTACHMENT = TypeAdapter(ck.Attachment)
TRANSCRIPTION = TypeAdapter(ck.TranscriptionResult)
SYNC_ACTION = TypeAdapter(ck.SyncCustomActionResponse)
HIDDEN_TYPES = {"hidden_context_item", "sdk_hidden_context"}

# What a successful non-streaming request answers with (None: the literal `{}`).
RESPONSE_ADAPTER: dict[str, TypeAdapter | None] = {
    "threads.get_by_id": THREAD,
    "threads.list": THREAD_PAGE,
    "items.list": ITEM_PAGE,
    "threads.update": THREAD,
    "threads.delete": None,
    "items.feedback": None,
    "attachments.create": ATTACHMENT,
    "attachments.delete": None,
    "input.transcribe": TRANSCRIPTION,
    "threads.sync_custom_action": SYNC_ACTION,
}


class ConformanceError(AssertionError):
    """A payload that the ChatKit models (or the SDK's byte format) reject."""


def unknown_keys(raw: Any, dumped: Any, path: str = "$") -> list[str]:
    """Paths of keys present in `raw` but absent from the model's dump of it."""
    found: list[str] = []
    if isinstance(raw, dict) and isinstance(dumped, dict):
        for key, value in raw.items():
            if key not in dumped:
                found.append(f"{path}.{key}")
            else:
                found.extend(unknown_keys(value, dumped[key], f"{path}.{key}"))
    elif isinstance(raw, list) and isinstance(dumped, list) and len(raw) == len(dumped):
        for i, (r, d) in enumerate(zip(raw, dumped)):
            found.extend(unknown_keys(r, d, f"{path}[{i}]"))
    return found


def nulls(raw: Any, path: str = "$") -> list[str]:
    """Paths holding JSON null: the SDK omits None fields (exclude_none)."""
    if raw is None:
        return [path]
    if isinstance(raw, dict):
        return [p for k, v in raw.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(raw, list):
        return [p for i, v in enumerate(raw) for p in nulls(v, f"{path}[{i}]")]
    return []


def check(adapter: TypeAdapter, raw_text: str | bytes, what: str, allow_null: bool = False) -> Any:
    """Validate `raw_text` with `adapter`, reject unknown keys, return the parsed JSON."""
    try:
        raw = json.loads(raw_text)
    except ValueError as e:
        raise ConformanceError(f"{what}: not JSON ({e}): {raw_text[:200]!r}") from None
    try:
        model = adapter.validate_python(raw)
    except Exception as e:  # pydantic.ValidationError, kept short in the report
        raise ConformanceError(f"{what}: rejected by chatkit.types: {e}: {raw}") from None
    dumped = adapter.dump_python(model, mode="json", by_alias=True)
    extra = unknown_keys(raw, dumped)
    if extra:
        raise ConformanceError(f"{what}: keys unknown to chatkit.types: {extra}: {raw}")
    if not allow_null and nulls(raw):
        raise ConformanceError(f"{what}: null values (the SDK omits them): {nulls(raw)}")
    return raw


def check_compact(payload: str, what: str) -> None:
    """The SDK writes compact JSON with raw UTF-8; one line per frame."""
    again = json.dumps(json.loads(payload), separators=(",", ":"), ensure_ascii=False)
    if again != payload:
        raise ConformanceError(f"{what}: not compact JSON as the SDK writes it: {payload[:200]!r}")


def check_hidden_absent(raw: Any, what: str) -> None:
    """Server-only items must never reach a client."""
    text = json.dumps(raw)
    for hidden in HIDDEN_TYPES:
        if f'"{hidden}"' in text:
            raise ConformanceError(f"{what}: a {hidden} item reached the client: {raw}")


@dataclass
class Reply:
    """One answer from the endpoint: a JSON body, or the validated events of a stream."""

    status: int
    content_type: str
    body: Any = None
    events: list[dict] = field(default_factory=list)
    closed_early: bool = False
    complete: bool = True  # False: the server cut the stream without ending it

    def event_types(self) -> list[str]:
        return [signature(e) for e in self.events]


def signature(event: dict) -> str:
    """The event's type, refined by its update or item type: what the differential compares."""
    t = event["type"]
    if t == "thread.item.updated":
        return f"{t}:{event['update']['type']}"
    if t in ("thread.item.added", "thread.item.done", "thread.item.replaced"):
        return f"{t}:{event['item']['type']}"
    if t == "error":
        return f"error:{event.get('code', 'custom')}:{event.get('allow_retry', False)}"
    return t


class RawResponse:
    """An HTTP/1.1 response read straight off the socket, so that a stream cut without its
    terminating chunk (what the SDK does on errors before the first event) is seen as such."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = sock.makefile("rb")
        status_line = self.buf.readline().decode("latin-1")
        if not status_line:
            raise ConformanceError("connection closed before the status line")
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.buf.readline().decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self.left = int(self.headers.get("content-length", "-1"))
        self.pending = b""
        self.complete = False  # the body ended as HTTP says it must (0-chunk or full length)
        self.chunks = 0

    def getheader(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def _more(self) -> bool:
        """Append the next piece of the body to `pending`; False at the end of the body."""
        if self.complete:
            return False
        if not self.chunked:
            want = self.left if self.left >= 0 else 65536
            data = self.buf.read1(want) if want else b""
            if self.left >= 0:
                self.left -= len(data)
                self.complete = self.left == 0
            elif not data:
                self.complete = True
            self.pending += data
            return bool(data)
        size_line = self.buf.readline()
        if not size_line.endswith(b"\r\n"):
            return False  # cut mid-stream: `complete` stays False
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            self.buf.readline()
            self.complete = True
            return False
        data = self.buf.read(size + 2)
        if len(data) != size + 2:
            self.pending += data[:size]
            return False
        self.chunks += 1
        self.pending += data[:size]
        return True

    def readline(self) -> bytes:
        while b"\n" not in self.pending:
            if not self._more():
                line, self.pending = self.pending, b""
                return line
        line, _, self.pending = self.pending.partition(b"\n")
        return line + b"\n"

    def read(self) -> bytes:
        while self._more():
            pass
        data, self.pending = self.pending, b""
        return data

    def close(self) -> None:
        self.buf.close()
        self.sock.close()


class Client:
    """A ChatKit front end's view of the endpoint: POST a JSON body, read JSON or SSE."""

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        strict: bool = True,
    ):
        # strict: a stream cut without its terminating chunk fails (the SDK itself does that
        # on errors raised before its first event, so the reference runs with strict=False).
        self.strict = strict
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/chatkit"
        self.timeout = timeout
        self.headers = headers or {}

    def post_raw(self, body: bytes, headers: dict[str, str] | None = None) -> RawResponse:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        hdrs = {
            "host": f"{self.host}:{self.port}",
            "content-type": "application/json",
            **self.headers,
            **(headers or {}),
            "content-length": str(len(body)),
            "connection": "close",
        }
        head = f"POST {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        sock.sendall(head.encode() + b"\r\n" + body)
        return RawResponse(sock)

    def request(self, req: dict, stop_after: Any = None) -> Reply:
        """Send a validated request. `stop_after(events)` returning True closes the stream."""
        body = json.dumps(req, separators=(",", ":")).encode()
        check(REQ, body, f"request {req.get('type')}", allow_null=True)
        parsed = REQ.validate_json(body)
        resp = self.post_raw(body)
        try:
            ctype = resp.getheader("content-type", "")
            if resp.status == 200 and ck.is_streaming_req(parsed):
                if not ctype.startswith("text/event-stream"):
                    raise ConformanceError(f"{req['type']}: content-type {ctype!r}, want SSE")
                reply = Reply(resp.status, ctype)
                reply.closed_early = read_events(resp, reply.events, req["type"], stop_after)
                reply.complete = resp.complete or reply.closed_early
                if self.strict and not reply.complete:
                    raise ConformanceError(
                        f"{req['type']}: stream dropped without its end: {reply.event_types()}"
                    )
                return reply
            data = resp.read()
            if not resp.complete:
                raise ConformanceError(f"{req['type']}: response body cut short: {data[:200]!r}")
            reply = Reply(resp.status, ctype)
            if resp.status == 200:
                if not ctype.startswith("application/json"):
                    raise ConformanceError(f"{req['type']}: content-type {ctype!r}, want JSON")
                adapter = RESPONSE_ADAPTER[req["type"]]
                if adapter is None:
                    if data != b"{}":
                        raise ConformanceError(f"{req['type']}: want literal {{}}, got {data!r}")
                    reply.body = {}
                else:
                    reply.body = check(adapter, data, f"response to {req['type']}")
                    check_hidden_absent(reply.body, f"response to {req['type']}")
            else:
                reply.body = check_error_body(resp.status, ctype, data, req["type"])
            return reply
        finally:
            resp.close()


def check_error_body(status: int, ctype: str, data: bytes, what: str) -> dict:
    """The hub's HTTP error envelope: `{"error":{"code","message"}}` with a 4xx status."""
    if not 400 <= status < 500:
        raise ConformanceError(f"{what}: HTTP {status} (want 200 or 4xx): {data[:200]!r}")
    if not ctype.startswith("application/json"):
        raise ConformanceError(f"{what}: HTTP {status} with content-type {ctype!r}: {data[:200]!r}")
    body = json.loads(data)
    err = body.get("error") if isinstance(body, dict) else None
    if (
        set(body) != {"error"}
        or not isinstance(err, dict)
        or set(err) != {"code", "message"}
        or not all(isinstance(err[k], str) and err[k] for k in ("code", "message"))
    ):
        raise ConformanceError(f"{what}: malformed error body: {body}")
    return body


def read_events(resp, out: list[dict], what: str, stop_after: Any) -> bool:
    """Read `data: <json>\\n\\n` frames, validating each. True when closed by `stop_after`."""
    while True:
        line = resp.readline()
        if not line:
            return False
        if not line.endswith(b"\n"):
            raise ConformanceError(f"{what}: stream ended inside a frame: {line!r}")
        text = line.decode("utf-8")
        if not text.startswith("data: "):
            raise ConformanceError(f"{what}: unexpected SSE line {text!r} (SDK writes only data:)")
        blank = resp.readline()
        if blank != b"\n":
            raise ConformanceError(f"{what}: frame not followed by a blank line: {blank!r}")
        payload = text[len("data: ") : -1]
        check_compact(payload, f"{what} event")
        event = check(EVENT, payload, f"{what} event")
        check_hidden_absent(event, f"{what} event")
        out.append(event)
        if stop_after is not None and stop_after(out):
            return True


def user_input(text: str) -> dict:
    """A UserMessageInput as the ChatKit front end sends it."""
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


def message_text(item: dict) -> str:
    """The plain text of a user or assistant message item."""
    return "".join(part.get("text", "") for part in item.get("content", []))
