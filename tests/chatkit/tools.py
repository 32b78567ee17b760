"""ChatKit tool calls, judged by `chatkit.types` (strict, see ckproto) and by the reference
`ChatKitServer` (reference_server.py, started here).

Usage: `python tools.py URL --approve-tool NAME --server-tool NAME`
The target must offer `get_location` as a ChatKit client tool, gate server tool `--approve-tool`
(an echo taking `{"text"}`) behind an approval, and run `--server-tool` (an adder taking
`{"a","b"}`) without one.

1. Client tool, compared with the reference step by step: a `/tool` message ends its stream with
   a pending `client_tool_call`; `threads.add_client_tool_output` streams the reply quoting the
   result; the stored items agree.
2. Bad input (the target only): a second tool output with nothing pending, an unknown call, an
   unknown action, an already resolved approval: each a 4xx JSON error that changes nothing.
3. Approvals: the widget's approve and deny buttons, sent back as `threads.custom_action`,
   replace the widget with the call's task and stream the continuation.
4. A server tool that needs no approval shows `progress_update`, then its task item.
"""

from __future__ import annotations

import argparse
import sys

from ckproto import Client, ConformanceError, Reply, message_text, user_input
from differential import start_reference

TOOL = "get_location"


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise ConformanceError(msg)


def texts(reply: Reply) -> list[str]:
    return [message_text(e["item"]) for e in reply.events
            if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"]


class Side:
    def __init__(self, url: str, strict: bool):
        self.c = Client(url, strict=strict)
        self.thread = ""

    def send(self, text: str) -> Reply:
        if not self.thread:
            r = self.c.request({"type": "threads.create", "params": {"input": user_input(text)}})
            expect(r.status == 200, f"threads.create: {r.status} {r.body}")
            self.thread = r.events[0]["thread"]["id"]
            return r
        params = {"thread_id": self.thread, "input": user_input(text)}
        return self.c.request({"type": "threads.add_user_message", "params": params})

    def tool_output(self, result) -> Reply:
        params = {"thread_id": self.thread, "result": result}
        return self.c.request({"type": "threads.add_client_tool_output", "params": params})

    def action(self, action: dict, item_id: str | None = None) -> Reply:
        params = {"thread_id": self.thread, "action": action}
        if item_id:
            params["item_id"] = item_id
        return self.c.request({"type": "threads.custom_action", "params": params})

    def items(self) -> list[dict]:
        body = self.c.request(
            {"type": "items.list", "params": {"thread_id": self.thread, "order": "asc", "limit": 100}}
        ).body
        return body["data"]

    def get(self) -> dict:
        return self.c.request({"type": "threads.get_by_id", "params": {"thread_id": self.thread}}).body


def last_done(reply: Reply) -> dict:
    """The last item done in a stream (a `thread.updated` with the title may follow it)."""
    return [e for e in reply.events if e["type"] == "thread.item.done"][-1]["item"]


def call_shape(item: dict) -> tuple:
    """What must agree about a client_tool_call item (ids and times differ)."""
    return (sorted(item), item["status"], item["name"], item["arguments"], item.get("output"))


def stored(side: Side) -> list[tuple]:
    return [(i["type"], message_text(i), i.get("status"), i.get("output")) for i in side.items()]


def client_tool(ref: Side, hub: Side, ok) -> None:
    ask = f'/tool {TOOL} {{"precise": true}}'
    a, b = ref.send(ask), hub.send(ask)
    expect(a.event_types() == b.event_types(),
           f"tool call turn\n ref {a.event_types()}\n hub {b.event_types()}")
    ca, cb = last_done(a), last_done(b)
    expect(cb["type"] == "client_tool_call" and cb["status"] == "pending", f"{cb}")
    expect(cb["arguments"] == {"precise": True}, f"arguments as an object: {cb}")
    expect(call_shape(ca) == call_shape(cb), f"client_tool_call\n ref {ca}\n hub {cb}")
    ok("a /tool turn ends with the same pending client_tool_call as the reference")
    expect(stored(ref) == stored(hub), f"stored\n ref {stored(ref)}\n hub {stored(hub)}")
    listed = [i for i in hub.get()["items"]["data"] if i["type"] == "client_tool_call"]
    expect([i["id"] for i in listed] == [cb["id"]], f"threads.get_by_id: {listed}")
    ok("items.list and threads.get_by_id list the pending call as the reference stores it")

    result = {"city": "Paris"}
    a, b = ref.tool_output(result), hub.tool_output(result)
    expect(a.event_types() == b.event_types() and texts(a) == texts(b),
           f"tool output\n ref {a.event_types()} {texts(a)}\n hub {b.event_types()} {texts(b)}")
    expect(texts(b) == [f'Tool {TOOL} returned: {{"city":"Paris"}} '], f"{texts(b)}")
    ok("threads.add_client_tool_output streams the continuation as the reference does")
    expect(stored(ref) == stored(hub), f"stored\n ref {stored(ref)}\n hub {stored(hub)}")
    ok("the resolved call is stored completed with its output, as by the reference")


def bad_input(hub: Side, ok) -> None:
    before = hub.items()
    cases = [
        ("tool output with nothing pending", hub.tool_output("late"), 400),
        ("approve an unknown call", hub.action({"type": "tool.approve", "payload": {"call_id": "call_nope"}}), 404),
        ("an unknown action", hub.action({"type": "demo.click", "payload": {"n": 1}}), 400),
        ("an approval without call_id", hub.action({"type": "tool.deny", "payload": {}}), 400),
    ]
    for what, r, status in cases:
        expect(r.status == status, f"{what}: HTTP {r.status}, want {status}: {r.body} {r.event_types()}")
    expect(hub.items() == before, "a rejected request changed the thread")
    ok(f"{len(cases)} bad tool requests get 4xx JSON errors and change nothing")


def buttons(widget: dict) -> dict[str, dict]:
    """label -> onClickAction of every Button in a widget tree."""
    found: dict[str, dict] = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Button":
                found[node["label"]] = node["onClickAction"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(widget)
    return found


def approvals(hub: Side, tool: str, ok) -> None:
    r = hub.send(f'/tool {tool} {{"text": "ship it"}}')
    widget_item = last_done(r)
    expect(widget_item["type"] == "widget", f"{r.event_types()}")
    acts = buttons(widget_item["widget"])
    expect(set(acts) == {"Approve", "Deny"}, f"buttons {acts}")
    expect(any(i["id"] == widget_item["id"] and i["type"] == "widget" for i in hub.items()),
           "the waiting approval is listed as its widget")
    ok("a gated server call ends the stream with an approve / deny widget")

    r = hub.action(acts["Approve"], widget_item["id"])
    types = r.event_types()
    expect(types[:2] == ["stream_options", "thread.item.replaced:task"], f"{types}")
    task = r.events[1]["item"]
    expect(task["id"] == widget_item["id"] and task["task"].get("content") == "ship it", f"{task}")
    expect(texts(r) == [f"Tool {tool} returned: ship it "], f"{texts(r)}")
    ok("approve: the widget becomes the call's task and the continuation quotes its output")

    before = hub.items()
    again = hub.action(acts["Approve"], widget_item["id"])
    expect(again.status == 400 and again.body["error"]["code"] == "bad_request", f"{again.body}")
    expect(hub.items() == before, "a second approval changed the thread")
    ok("approving an already resolved call is a 400 that changes nothing")

    r = hub.send(f'/tool {tool} {{"text": "no"}}')
    widget_item = last_done(r)
    acts = buttons(widget_item["widget"])
    r = hub.action(acts["Deny"], widget_item["id"])
    expect(r.event_types()[:2] == ["stream_options", "thread.item.replaced:task"], f"{r.event_types()}")
    expect(texts(r) == [f"Tool {tool} was denied. "], f"{texts(r)}")
    ok("deny: the call never runs and the continuation says so")


def server_tool(hub: Side, tool: str, ok) -> None:
    r = hub.send(f'/tool {tool} {{"a": 40, "b": 2}}')
    types = r.event_types()
    expect("progress_update" in types, f"{types}")
    i = types.index("thread.item.done:task")
    expect(types.index("progress_update") < i, f"{types}")
    task = r.events[i]["item"]["task"]
    expect(task["content"] == "42" and task["status_indicator"] == "complete", f"{task}")
    expect(texts(r) == [f"Tool {tool} returned: 42 "], f"{texts(r)}")
    listed = [i for i in hub.items() if i["type"] == "task"]
    expect(any(t["task"] == task for t in listed), f"task not listed: {listed}")
    ok("a server call shows progress_update, then its task item, listed the same way")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("url")
    ap.add_argument("--approve-tool", required=True)
    ap.add_argument("--server-tool", required=True)
    args = ap.parse_args()
    passed = 0

    def ok(name: str) -> None:
        nonlocal passed
        passed += 1
        print(f"ok {passed:2} {name}", flush=True)

    proc = None
    try:
        proc, ref_url = start_reference(0, 0)
        client_tool(Side(ref_url, False), hub := Side(args.url, True), ok)
        bad_input(hub, ok)
        approvals(hub, args.approve_tool, ok)
        server_tool(hub, args.server_tool, ok)
    except (ConformanceError, OSError) as e:
        print(f"tools FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"tools: all {passed} checks passed against {args.url}", flush=True)


if __name__ == "__main__":
    main()
