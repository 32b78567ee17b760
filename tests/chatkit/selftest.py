"""Proves the validator can fail: each known-bad payload must be rejected, each good one kept.

Usage: `python selftest.py`; exit status 0 when every case behaves.
"""

from __future__ import annotations

import sys

from ckproto import EVENT, REQ, THREAD, ConformanceError, check, check_compact, read_events

GOOD_EVENT = '{"type":"stream_options","stream_options":{"allow_cancel":true}}'
GOOD_THREAD = (
    '{"id":"t","created_at":"2026-11-21T10:00:00Z","status":{"type":"active"},'
    '"metadata":{},"items":{"data":[],"has_more":false}}'
)
GOOD_REQ = '{"type":"threads.get_by_id","params":{"thread_id":"t"}}'


class Lines:
    """A response stand-in for read_events: serves fixed lines."""

    def __init__(self, raw: bytes):
        self.lines = raw.splitlines(keepends=True)

    def readline(self) -> bytes:
        return self.lines.pop(0) if self.lines else b""


def rejects(fn, *args) -> bool:
    try:
        fn(*args)
    except ConformanceError:
        return True
    return False


def main() -> int:
    stream = lambda raw: read_events(Lines(raw), [], "selftest", None)
    good = [
        ("event", lambda: check(EVENT, GOOD_EVENT, "e")),
        ("thread with Z timestamp", lambda: check(THREAD, GOOD_THREAD, "t")),
        ("request", lambda: check(REQ, GOOD_REQ, "r")),
        ("stream", lambda: stream(f"data: {GOOD_EVENT}\n\n".encode())),
    ]
    bad = [
        ("unknown event type", check, EVENT, '{"type":"thread.exploded"}', "e"),
        ("camelCase key", check, EVENT,
         '{"type":"thread.item.updated","item_id":"i","update":{"type":'
         '"assistant_message.content_part.text_delta","content_index":0,"delta":"x",'
         '"contentIndex":0}}', "e"),
        ("unknown request type", check, REQ, '{"type":"threads.explode","params":{}}', "r"),
        ("null field", check, THREAD, GOOD_THREAD.replace('"metadata":{}', '"title":null,"metadata":{}'), "t"),
        ("unknown thread key", check, THREAD, GOOD_THREAD.replace('"metadata"', '"extra":1,"metadata"'), "t"),
        ("spaced JSON", check_compact, GOOD_EVENT.replace(":", ": "), "e"),
        ("event: line", stream, f"event: x\ndata: {GOOD_EVENT}\n\n".encode()),
        ("missing blank line", stream, f"data: {GOOD_EVENT}\ndata: {GOOD_EVENT}\n\n".encode()),
        ("hidden item", stream,
         b'data: {"type":"thread.item.done","item":{"id":"h","thread_id":"t","created_at":'
         b'"2026-11-21T10:00:00Z","type":"sdk_hidden_context","content":"x"}}\n\n'),
    ]
    failed = 0
    for name, fn in good:
        try:
            fn()
        except ConformanceError as e:
            failed += 1
            print(f"FAIL accepts {name}: {e}")
    for name, fn, *args in bad:
        if not rejects(fn, *args):
            failed += 1
            print(f"FAIL rejects {name}")
    total = len(good) + len(bad)
    print(f"selftest: {total - failed} of {total} validator cases behave")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
