"""ChatKit reasoning workflows, judged by `chatkit.types` (strict: see ckproto).

Usage: `python reasoning.py URL --deltas N` against a hub running the scripted agent with
`--scripted-deltas N`.

1. A `/think` message streams a `workflow` item of type `reasoning`: `thread.item.added`, then
   `workflow.task.added` / `workflow.task.updated` with one `thought` task holding the text so
   far, then `thread.item.done` with the whole thought, collapsed, before the reply's message
   starts; the reply holds none of the reasoning.
2. `items.list` (both orders) and `threads.get_by_id` show the same workflow, before the reply.
"""

from __future__ import annotations

import argparse
import sys

from ckproto import Client, ConformanceError, message_text, user_input


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise ConformanceError(msg)


def cycle(words: list[str], n: int) -> str:
    return "".join(f"{words[i % len(words)]} " for i in range(n))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--deltas", type=int, required=True)
    args = ap.parse_args()
    c = Client(args.url)
    text = "/think about chatkit workflows"
    thought = cycle(["Thinking", "about", *text.split()[1:]], args.deltas)
    reply = cycle(["Echo:", *text.split()], args.deltas)

    r = c.request({"type": "threads.create", "params": {"input": user_input(text)}})
    expect(r.status == 200, f"threads.create: {r.status} {r.body}")
    thread = r.events[0]["thread"]["id"]
    sig = r.event_types()
    first_wf = sig.index("thread.item.added:workflow")
    done_wf = sig.index("thread.item.done:workflow")
    first_msg = sig.index("thread.item.added:assistant_message")
    expect(first_wf < done_wf < first_msg, f"the workflow ends before the reply starts: {sig}")
    updates = [e for e in r.events[first_wf + 1 : done_wf] if e["type"] == "thread.item.updated"]
    kinds = [e["update"]["type"] for e in updates]
    expect(kinds[:1] == ["workflow.task.added"], f"first update: {kinds}")
    expect(all(k == "workflow.task.updated" for k in kinds[1:]), f"updates: {kinds}")
    wf_id = r.events[first_wf]["item"]["id"]
    expect(all(e["item_id"] == wf_id for e in updates), "updates name the workflow")
    expect(updates[-1]["update"]["task"]["content"] == thought, f"last update: {updates[-1]}")
    for e in updates:
        task = e["update"]["task"]
        expect(task["type"] == "thought" and e["update"]["task_index"] == 0, f"task: {e}")
        expect(thought.startswith(task["content"]), f"a prefix of the thought: {task}")
    done = r.events[done_wf]["item"]
    wf = done["workflow"]
    expect(done["id"] == wf_id and wf["type"] == "reasoning", f"done: {done}")
    expect(wf["expanded"] is False, f"a finished thought is collapsed: {wf}")
    expect(len(wf["tasks"]) == 1 and wf["tasks"][0]["content"] == thought, f"tasks: {wf}")
    expect(wf["tasks"][0]["status_indicator"] == "complete", f"indicator: {wf}")
    msgs = [e["item"] for e in r.events if e["type"] == "thread.item.done"
            and e["item"]["type"] == "assistant_message"]
    expect([message_text(m) for m in msgs] == [reply], f"the reply: {msgs}")
    print("ok - the reasoning workflow streams and closes before the reply")

    for order in ("asc", "desc"):
        page = c.request({"type": "items.list",
                          "params": {"thread_id": thread, "order": order, "limit": 20}}).body
        types = [i["type"] for i in page["data"]]
        want = ["user_message", "workflow", "assistant_message"]
        expect(types == (want if order == "asc" else want[::-1]), f"items.list {order}: {types}")
        listed = next(i for i in page["data"] if i["type"] == "workflow")
        expect(listed == done, f"items.list shows what the stream ended with: {listed} != {done}")
    got = c.request({"type": "threads.get_by_id", "params": {"thread_id": thread}}).body
    types = [i["type"] for i in got["items"]["data"]]
    expect("workflow" in types, f"threads.get_by_id items: {types}")
    print("ok - items.list and threads.get_by_id show the workflow before the reply")
    print("reasoning: all 2 checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConformanceError as e:
        print(f"not ok - {e}")
        sys.exit(1)
