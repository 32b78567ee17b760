"""Differential test: the same scripted ChatKit conversations against the reference
`ChatKitServer` (reference_server.py, started here) and a target endpoint; the sequences of
event types and update types, and the stored item types, must match step by step.

Usage: `python differential.py TARGET_URL [--deltas N] [--delay-ms MS]`
(`--deltas`/`--delay-ms` must be the target's scripted-agent settings).
`python differential.py --self` compares the reference with a second reference instance.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable

from ckproto import Client, ConformanceError, Reply, message_text, user_input
from conformance import wait_for_assistant

HERE = os.path.dirname(os.path.abspath(__file__))


def start_reference(deltas: int, delay_ms: int) -> tuple[subprocess.Popen, str]:
    """Start reference_server.py on a free loopback port; return the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "reference_server.py"), "--deltas", str(deltas),
         "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("PORT "):
        proc.kill()
        raise ConformanceError(f"reference server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}/chatkit"


def deltas_seen(events: list[dict]) -> int:
    return sum(1 for e in events if e.get("update", {}).get("type", "").endswith("text_delta"))


class Side:
    """One server under test and the ids its conversation produced so far."""

    def __init__(self, name: str, url: str, strict: bool):
        self.name = name
        self.c = Client(url, strict=strict)
        self.thread = ""
        self.first_user = ""

    def send(self, text: str, stop_after: Callable | None = None) -> Reply:
        if not self.thread:
            r = self.c.request(
                {"type": "threads.create", "params": {"input": user_input(text)}}, stop_after
            )
            self.thread = r.events[0]["thread"]["id"]
            self.first_user = r.events[1]["item"]["id"]
            return r
        params = {"thread_id": self.thread, "input": user_input(text)}
        return self.c.request({"type": "threads.add_user_message", "params": params}, stop_after)

    def retry_first(self) -> Reply:
        params = {"thread_id": self.thread, "item_id": self.first_user}
        return self.c.request({"type": "threads.retry_after_item", "params": params})

    def stored(self) -> list[tuple[str, str]]:
        """(type, text) of the thread's visible items, oldest first."""
        body = self.c.request(
            {"type": "items.list", "params": {"thread_id": self.thread, "order": "asc", "limit": 50}}
        ).body
        return [(i["type"], message_text(i)) for i in body["data"]]


def texts(reply: Reply) -> list[str]:
    """Assistant text per streamed reply: what the scripted agents must agree on."""
    return [message_text(e["item"]) for e in reply.events
            if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"]


def run(ref: Side, hub: Side) -> int:
    steps: list[tuple[str, Callable[[Side], Reply | None]]] = [
        ("create", lambda s: s.send("Hello there, differential world")),
        ("add message", lambda s: s.send("a second message")),
        ("retry after the first message", lambda s: s.retry_first()),
        ("upstream error", lambda s: s.send("this one will [[fail]] midway")),
        ("cancel by closing the stream", lambda s: s.send(
            "stop me early", stop_after=lambda evs: deltas_seen(evs) >= 3)),
        ("message after the stop", lambda s: s.send("and now finish")),
    ]
    failures = 0
    for name, step in steps:
        a, b = step(ref), step(hub)
        same = a.event_types() == b.event_types() and texts(a) == texts(b)
        if a.closed_early:
            # Wait for both stores to hold the partial reply before comparing them.
            for side, r in ((ref, a), (hub, b)):
                wait_for_assistant(side.c, side.thread, r.events[-1]["item_id"])
        items_a, items_b = ref.stored(), hub.stored()
        types_same = [t for t, _ in items_a] == [t for t, _ in items_b]
        # Stored texts match, except a cancelled partial whose length depends on timing.
        texts_same = a.closed_early or items_a == items_b
        ok = same and types_same and texts_same
        failures += not ok
        print(f"{'same' if ok else 'DIFF'}  {name}: {len(a.events)} events, "
              f"{len(items_a)} stored items", flush=True)
        if not ok:
            print(f"  reference events: {a.event_types()} {texts(a)}")
            print(f"  target    events: {b.event_types()} {texts(b)}")
            print(f"  reference items:  {items_a}")
            print(f"  target    items:  {items_b}", flush=True)
    if failures:
        print(f"differential: {failures} of {len(steps)} steps differ", file=sys.stderr)
        return 1
    print(f"differential: all {len(steps)} steps match the reference", flush=True)
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("url", nargs="?")
    ap.add_argument("--self", action="store_true", help="target a second reference server")
    ap.add_argument("--deltas", type=int, default=12)
    ap.add_argument("--delay-ms", type=int, default=40)
    args = ap.parse_args()
    if not args.url and not args.self:
        ap.error("give a target URL or --self")
    procs = []
    try:
        proc, ref_url = start_reference(args.deltas, args.delay_ms)
        procs.append(proc)
        target, strict = args.url, True
        if args.self:
            proc2, target = start_reference(args.deltas, args.delay_ms)
            procs.append(proc2)
            strict = False
        code = run(Side("reference", ref_url, False), Side("target", target, strict))
    except (ConformanceError, OSError) as e:
        print(f"differential FAILED: {e}", file=sys.stderr, flush=True)
        code = 1
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
    sys.exit(code)


if __name__ == "__main__":
    main()
