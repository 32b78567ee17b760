"""ChatKit requests that carry context and a model pick (PROTOCOL 1.2), judged by
`chatkit.types`: request-level `metadata`, `quoted_text`, an `input_tag` with `data` and
`inference_options.model` on `threads.create` and `threads.add_user_message`; every request body,
SSE event and JSON answer validated (unknown keys fail too); an unknown model refused with the
hub's error body; the thread's items show the messages as the user wrote them.

Usage: `python context.py URL MODEL`; prints `THREAD <id>` for the caller to inspect, and exits 0
when every check passed.
"""

from __future__ import annotations

import argparse
import sys

from ckproto import Client, ConformanceError, message_text


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise ConformanceError(msg)


def run(url: str, model: str) -> int:
    c = Client(url, strict=True)
    passed = 0

    def ok(name: str) -> None:
        nonlocal passed
        passed += 1
        print(f"ok {passed} {name}", flush=True)

    first = {
        "content": [
            {"type": "input_text", "text": "Tell me about "},
            {"type": "input_tag", "id": "t1", "text": "@Pro", "data": {"plan_id": "pro"}, "interactive": False},
        ],
        "attachments": [],
        "quoted_text": "the Pro plan costs 20",
        "inference_options": {"model": model},
    }
    r = c.request({"type": "threads.create", "metadata": {"tz": "Europe/Paris"}, "params": {"input": first}})
    expect(r.status == 200, f"threads.create: HTTP {r.status}: {r.body}")
    tid = r.events[0]["thread"]["id"]
    user = next(e["item"] for e in r.events if e["type"] == "thread.item.done" and e["item"]["type"] == "user_message")
    expect(message_text(user) == "Tell me about @Pro", f"user item text: {user}")
    expect(user.get("quoted_text") == "the Pro plan costs 20", f"user item quote: {user}")
    last = r.events[-1]
    expect(last["type"] == "thread.item.done" and last["item"]["type"] == "assistant_message", f"{last}")
    ok("threads.create with metadata, quoted_text, a tag and a model")

    second = {
        "content": [{"type": "input_text", "text": "and the price?"}],
        "attachments": [],
        "quoted_text": "costs 20",
        "inference_options": {"model": model},
    }
    r = c.request({"type": "threads.add_user_message", "metadata": {"page": "/pricing"}, "params": {"thread_id": tid, "input": second}})
    expect(r.status == 200, f"threads.add_user_message: HTTP {r.status}: {r.body}")
    expect(r.events[-1]["type"] == "thread.item.done", f"{r.event_types()}")
    ok("threads.add_user_message with metadata, quoted_text and a model")

    bad = dict(second, inference_options={"model": "no-such-model"})
    r = c.request({"type": "threads.add_user_message", "params": {"thread_id": tid, "input": bad}})
    expect(r.status == 400 and r.body["error"]["code"] == "bad_request", f"unknown model: {r.status} {r.body}")
    ok("an unknown model is a 400 bad_request")

    r = c.request({"type": "items.list", "params": {"thread_id": tid, "order": "asc"}})
    expect(r.status == 200, f"items.list: {r.status}")
    users = [i for i in r.body["data"] if i["type"] == "user_message"]
    texts = [message_text(i) for i in users]
    expect(texts == ["Tell me about @Pro", "and the price?"], f"user texts: {texts}")
    expect([i.get("quoted_text") for i in users] == ["the Pro plan costs 20", "costs 20"], f"{users}")
    expect(len(r.body["data"]) == 4, f"nothing stored for the refused message: {r.body}")
    ok("items.list shows the messages as written")

    r = c.request({"type": "threads.get_by_id", "params": {"thread_id": tid}})
    expect(r.status == 200, f"threads.get_by_id: {r.status}")
    ok("threads.get_by_id")

    print(f"THREAD {tid}")
    print(f"context: all {passed} checks passed", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("model")
    a = ap.parse_args()
    try:
        return run(a.url, a.model)
    except ConformanceError as e:
        print(f"FAIL: {e}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
