"""ChatKit conformance check: sends every request type to a ChatKit endpoint and validates every
request body, SSE event and JSON response against `chatkit.types` (unknown keys fail too).

Usage: `python conformance.py URL [--reference] [--deltas N]`
`--reference` is for the official SDK server, which answers malformed requests with 500 and drops
the connection on unknown threads; without it the hub's stricter contract is checked too (400/404
JSON errors, unsupported features as well-formed errors). Exit status 0 means every check passed.
"""

from __future__ import annotations

import argparse
import sys
import time

from reference_server import scripted_deltas
from ckproto import Client, ConformanceError, Reply, check_error_body, message_text, user_input

STREAM_HEAD = [
    "thread.created",
    "thread.item.done:user_message",
    "stream_options",
]
REPLY = [
    "thread.item.added:assistant_message",
    "thread.item.updated:assistant_message.content_part.added",
]
REPLY_END = [
    "thread.item.updated:assistant_message.content_part.done",
    "thread.item.done:assistant_message",
]
DELTA = "thread.item.updated:assistant_message.content_part.text_delta"


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise ConformanceError(msg)


def without_title(types: list[str]) -> list[str]:
    return [t for t in types if t != "thread.updated"]


def check_reply(reply: Reply, head: list[str], deltas: int, what: str) -> dict:
    """A complete streamed turn: `head`, the assistant message, consistent ids and text."""
    expect(reply.status == 200, f"{what}: HTTP {reply.status}: {reply.body}")
    types = without_title(reply.event_types())
    want = head + REPLY + [DELTA] * deltas + REPLY_END
    expect(types == want, f"{what}: event sequence\n got  {types}\n want {want}")
    so = next(e for e in reply.events if e["type"] == "stream_options")
    expect(so["stream_options"] == {"allow_cancel": True}, f"{what}: {so}")
    added = next(e for e in reply.events if e["type"] == "thread.item.added")["item"]
    done = reply.events[-1]["item"]
    updates = [e for e in reply.events if e["type"] == "thread.item.updated"]
    expect(all(u["item_id"] == added["id"] for u in updates), f"{what}: update item ids differ")
    expect(done["id"] == added["id"] and added["content"] == [], f"{what}: added/done mismatch")
    text = "".join(u["update"]["delta"] for u in updates if "delta" in u["update"])
    expect(message_text(done) == text, f"{what}: done text {done} != deltas {text!r}")
    part_done = updates[-1]["update"]["content"]
    expect(part_done == {"type": "output_text", "text": text, "annotations": []}, f"{what}")
    return done


def run(url: str, reference: bool, deltas: int) -> int:
    c = Client(url, strict=not reference)
    passed = 0

    def ok(name: str) -> None:
        nonlocal passed
        passed += 1
        print(f"ok {passed:2} {name}", flush=True)

    # threads.create: the full first turn, with a title as thread.updated.
    r = c.request({"type": "threads.create", "params": {"input": user_input("Hello there")}})
    done1 = check_reply(r, STREAM_HEAD, deltas, "threads.create")
    thread = r.events[0]["thread"]
    tid = thread["id"]
    expect(thread["items"] == {"data": [], "has_more": False}, f"new thread items: {thread}")
    user1 = r.events[1]["item"]
    expect(user1["thread_id"] == tid and message_text(user1) == "Hello there", f"{user1}")
    titles = [e for e in r.events if e["type"] == "thread.updated"]
    expect(len(titles) == 1 and titles[0]["thread"].get("title"), f"title events: {titles}")
    ok("threads.create streams the reference event order and a title")

    r = c.request(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": tid, "input": user_input("second message")},
        }
    )
    check_reply(r, STREAM_HEAD[1:], deltas, "threads.add_user_message")
    expect("thread.updated" not in r.event_types(), "title event on a titled thread")
    ok("threads.add_user_message")

    r = c.request({"type": "threads.get_by_id", "params": {"thread_id": tid}})
    items = r.body["items"]["data"]
    expect(len(items) == 4, f"get_by_id items: {items}")
    expect([i["type"] for i in items] == ["user_message", "assistant_message"] * 2, f"{items}")
    expect(items[1] == done1, f"stored assistant item differs from streamed:\n{items[1]}\n{done1}")
    ok("threads.get_by_id returns the items oldest first")

    # items.list paging, both orders, one item per page.
    def walk(order: str) -> list[str]:
        ids, after = [], None
        for _ in range(10):
            params = {"thread_id": tid, "limit": 1, "order": order}
            if after:
                params["after"] = after
            p = c.request({"type": "items.list", "params": params}).body
            ids += [i["id"] for i in p["data"]]
            if not p["has_more"]:
                return ids
            after = p["after"]
            expect(after == p["data"][-1]["id"], f"page cursor {p}")
        raise ConformanceError("items.list paging did not end")

    asc = walk("asc")
    expect(asc == [i["id"] for i in items], f"items.list asc {asc}")
    expect(walk("desc") == asc[::-1], "items.list desc is not the reverse of asc")
    ok("items.list pages with after/limit/order")

    r = c.request({"type": "threads.update", "params": {"thread_id": tid, "title": "Renamed"}})
    expect(r.body["title"] == "Renamed" and r.body["items"]["data"] == [], f"{r.body}")
    r = c.request({"type": "threads.get_by_id", "params": {"thread_id": tid}})
    expect(r.body["title"] == "Renamed", f"title not stored: {r.body}")
    ok("threads.update")

    r2 = c.request({"type": "threads.create", "params": {"input": user_input("other thread")}})
    tid2 = r2.events[0]["thread"]["id"]
    r = c.request({"type": "threads.list", "params": {"limit": 1, "order": "desc"}})
    expect(len(r.body["data"]) == 1 and r.body["has_more"], f"threads.list: {r.body}")
    expect(r.body["data"][0]["id"] == tid2, "threads.list desc does not start with the newest")
    expect(r.body["data"][0]["items"] == {"data": [], "has_more": False}, f"{r.body}")
    r = c.request(
        {"type": "threads.list", "params": {"limit": 1, "order": "desc", "after": r.body["after"]}}
    )
    expect(r.body["data"][0]["id"] == tid, f"threads.list second page: {r.body}")
    ok("threads.list pages")

    fb_ids = [items[1]["id"]]
    r = c.request(
        {"type": "items.feedback", "params": {"thread_id": tid, "item_ids": fb_ids, "kind": "positive"}}
    )
    expect(r.status == 200, f"items.feedback: {r.status} {r.body}")
    ok("items.feedback")

    # Retry after the first user message: later items go, a new reply streams.
    r = c.request(
        {"type": "threads.retry_after_item", "params": {"thread_id": tid, "item_id": user1["id"]}}
    )
    check_reply(r, ["stream_options"], deltas, "threads.retry_after_item")
    left = c.request({"type": "items.list", "params": {"thread_id": tid, "order": "asc"}}).body
    expect([i["type"] for i in left["data"]] == ["user_message", "assistant_message"], f"{left}")
    expect(left["data"][0]["id"] == user1["id"], f"retry kept the wrong items: {left}")
    ok("threads.retry_after_item")

    # Upstream failure: stream.error, retryable, stream ends cleanly, nothing half-done listed.
    r = c.request(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": tid, "input": user_input("please [[fail]] now")},
        }
    )
    want = STREAM_HEAD[1:] + REPLY + [DELTA, "error:stream.error:True"]
    expect(r.event_types() == want, f"failure stream\n got  {r.event_types()}\n want {want}")
    ok("an upstream failure is a retryable stream.error")

    # Stop button: close the stream after 3 deltas; the partial reply is stored.
    seen = lambda evs: sum(1 for e in evs if e.get("update", {}).get("type", "").endswith("delta")) >= 3
    r = c.request(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": tid, "input": user_input("stop me early please")},
        },
        stop_after=seen,
    )
    expect(r.closed_early, "stream ended before the client closed it")
    partial = "".join(e["update"]["delta"] for e in r.events if "delta" in e.get("update", {}))
    stored = message_text(wait_for_assistant(c, tid, r.events[-1]["item_id"]))
    full = "".join(scripted_deltas("stop me early please", deltas))
    expect(stored.startswith(partial), f"stored {stored!r} does not start with seen {partial!r}")
    expect(full.startswith(stored) and stored != full, f"stored {stored!r} is not a partial of {full!r}")
    ok("closing the stream stores the partial reply")

    # The thread still works after a stop: the next turn streams in full.
    r = c.request(
        {"type": "threads.add_user_message", "params": {"thread_id": tid, "input": user_input("again")}}
    )
    check_reply(r, STREAM_HEAD[1:], deltas, "turn after stop")
    ok("the turn after a stop completes")

    for req in unsupported_requests(tid, items[1]["id"]):
        r = c.request(req)
        if r.status != 200:
            expect(not reference, f"{req['type']}: reference answered {r.status}")
        elif r.events:
            expect(
                r.event_types()[-1].startswith("error:") or reference,
                f"{req['type']}: stream without an error event: {r.event_types()}",
            )
        ok(f"{req['type']} answers a well-formed result or error")

    r = c.request({"type": "threads.delete", "params": {"thread_id": tid2}})
    expect(r.body == {}, f"threads.delete: {r.body}")
    ok("threads.delete")

    if not reference:
        passed += check_errors(c, tid, tid2)
    print(f"conformance: all {passed} checks passed against {url}", flush=True)
    return 0


def wait_for_assistant(c: Client, tid: str, item_id: str, timeout: float = 10.0) -> dict:
    """Poll items.list (bounded) until the cancelled run's item is stored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = c.request({"type": "items.list", "params": {"thread_id": tid, "limit": 50}}).body
        for item in page["data"]:
            if item["id"] == item_id:
                return item
        time.sleep(0.05)
    raise ConformanceError(f"partial item {item_id} not stored within {timeout}s")


def unsupported_requests(tid: str, assistant_id: str) -> list[dict]:
    """Request types this plain conversation cannot exercise end to end: here a tool output
    has no pending call and the action is unknown (tools.py covers the real round trips)."""
    action = {"type": "demo.click", "payload": {"n": 1}}
    return [
        {"type": "threads.add_client_tool_output", "params": {"thread_id": tid, "result": {"x": 1}}},
        {
            "type": "threads.add_structured_input",
            "params": {"thread_id": tid, "item_id": assistant_id, "input": {"answers": {}}},
        },
        {"type": "threads.custom_action", "params": {"thread_id": tid, "action": action}},
        {"type": "threads.sync_custom_action", "params": {"thread_id": tid, "action": action}},
        {
            "type": "attachments.create",
            "params": {"name": "a.txt", "size": 3, "mime_type": "text/plain"},
        },
        {"type": "attachments.delete", "params": {"attachment_id": "att_missing"}},
        {"type": "input.transcribe", "params": {"audio_base64": "AAAA", "mime_type": "audio/webm"}},
    ]


def check_errors(c: Client, tid: str, deleted: str) -> int:
    """The hub's contract beyond the SDK: bad input is a 4xx JSON error before any stream."""
    cases = [
        (b"{not json", 400),
        (b'{"type":"threads.explode","params":{}}', 400),
        (b'{"type":"threads.get_by_id"}', 400),
        (b'{"type":"threads.get_by_id","params":{"thread_id":7}}', 400),
        (b'{"type":"threads.add_user_message","params":{"thread_id":"%s"}}' % tid.encode(), 400),
        (b'{"type":"threads.get_by_id","params":{"thread_id":"%s"}}' % deleted.encode(), 404),
        (b'{"type":"items.list","params":{"thread_id":"nope"}}', 404),
        (
            b'{"type":"threads.add_user_message","params":{"thread_id":"nope","input":'
            b'{"content":[{"type":"input_text","text":"x"}],"attachments":[],"inference_options":{}}}}',
            404,
        ),
    ]
    for body, status in cases:
        resp = c.post_raw(body)
        data = resp.read()
        resp.close()
        expect(resp.status == status, f"{body!r}: HTTP {resp.status}, want {status}: {data!r}")
        check_error_body(resp.status, resp.getheader("content-type", ""), data, repr(body))
    print(f"ok    {len(cases)} malformed / unknown requests get 4xx JSON errors", flush=True)
    return len(cases)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("url")
    ap.add_argument("--reference", action="store_true")
    ap.add_argument("--deltas", type=int, default=12)
    args = ap.parse_args()
    try:
        sys.exit(run(args.url, args.reference, args.deltas))
    except (ConformanceError, OSError) as e:
        print(f"conformance FAILED against {args.url}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
