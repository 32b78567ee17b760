"""Reference ChatKit backend: the official `ChatKitServer` with an in-memory store and the hub's
scripted reply, served by uvicorn on 127.0.0.1. The differential test compares the hub to it.

Run: `python reference_server.py [--deltas N] [--delay-ms MS]`; it prints `PORT <n>` once listening.
The reply mirrors the hub's scripted agent: words = ["Echo:"] + the user text's first 64 words; delta i is
words[i % len(words)] + " ". A user text containing `[[fail]]` fails after the first delta.
A user text `/tool NAME {json}` ends the turn with a pending `client_tool_call` (as the Agents SDK
integration does for a client tool); after `threads.add_client_tool_output` the reply is
"Tool NAME returned: OUTPUT", one delta per word, as the hub's scripted agent says it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from chatkit import types as ck
from chatkit.server import ChatKitServer, StreamingResult
from chatkit.store import AttachmentStore, NotFoundError, Store

FAIL_MARKER = "[[fail]]"
MAX_WORDS = 64


def scripted_deltas(text: str, n: int) -> list[str]:
    words = ["Echo:", *text.split()[:MAX_WORDS]]
    return [words[i % len(words)] + " " for i in range(n)]


def title_for(text: str) -> str:
    """A thread title from its first message: its first non-empty line, cut near 48 characters
    (the hub's rule; the differential compares only that a title event arrives)."""
    line = next((l.strip() for l in text.splitlines() if l.strip()), "New chat")
    if len(line) <= 48:
        return line
    cut = line[:48]
    i = cut.rfind(" ")
    return (cut[:i] if i > 16 else cut) + "…"


class MemoryStore(Store[dict], AttachmentStore[dict]):
    """Threads, items and attachments in dicts; items keep insertion order."""

    def __init__(self) -> None:
        self.threads: dict[str, ck.ThreadMetadata] = {}
        self.items: dict[str, list[ck.ThreadItem]] = {}
        self.attachments: dict[str, ck.Attachment] = {}
        self.feedback: dict[str, str] = {}

    async def load_thread(self, thread_id: str, context: dict) -> ck.ThreadMetadata:
        if thread_id not in self.threads:
            raise NotFoundError(f"thread {thread_id} not found")
        return self.threads[thread_id].model_copy(deep=True)

    async def save_thread(self, thread: ck.ThreadMetadata, context: dict) -> None:
        self.threads[thread.id] = ck.ThreadMetadata(**thread.model_dump(exclude={"items"}))
        self.items.setdefault(thread.id, [])

    async def load_thread_items(self, thread_id, after, limit, order, context) -> ck.Page:
        return page(list(self.items.get(thread_id, [])), after, limit, order)

    async def load_threads(self, limit, after, order, context) -> ck.Page:
        rows = sorted(self.threads.values(), key=lambda t: t.created_at)
        return page(rows, after, limit, order)

    async def add_thread_item(self, thread_id: str, item: ck.ThreadItem, context: dict) -> None:
        self.items.setdefault(thread_id, []).append(item)

    async def save_item(self, thread_id: str, item: ck.ThreadItem, context: dict) -> None:
        rows = self.items.setdefault(thread_id, [])
        for i, row in enumerate(rows):
            if row.id == item.id:
                rows[i] = item
                return
        rows.append(item)

    async def load_item(self, thread_id: str, item_id: str, context: dict) -> ck.ThreadItem:
        for row in self.items.get(thread_id, []):
            if row.id == item_id:
                return row
        raise NotFoundError(f"item {item_id} not found")

    async def delete_thread(self, thread_id: str, context: dict) -> None:
        self.threads.pop(thread_id, None)
        self.items.pop(thread_id, None)

    async def delete_thread_item(self, thread_id: str, item_id: str, context: dict) -> None:
        self.items[thread_id] = [r for r in self.items.get(thread_id, []) if r.id != item_id]

    async def save_attachment(self, attachment: ck.Attachment, context: dict) -> None:
        self.attachments[attachment.id] = attachment

    async def load_attachment(self, attachment_id: str, context: dict) -> ck.Attachment:
        if attachment_id not in self.attachments:
            raise NotFoundError(f"attachment {attachment_id} not found")
        return self.attachments[attachment_id]

    async def delete_attachment(self, attachment_id: str, context: dict) -> None:
        self.attachments.pop(attachment_id, None)

    async def create_attachment(self, input: ck.AttachmentCreateParams, context: dict):
        return ck.FileAttachment(
            id=self.generate_attachment_id(input.mime_type, context),
            name=input.name,
            mime_type=input.mime_type,
            upload_descriptor=ck.AttachmentUploadDescriptor(
                url="http://127.0.0.1/upload", method="PUT", headers={}
            ),
        )


def page(rows: list, after: str | None, limit: int, order: str) -> ck.Page:
    """Cursor paging: `after` is the id of the last row of the previous page."""
    if order == "desc":
        rows = list(reversed(rows))
    start = 0
    if after:
        ids = [r.id for r in rows]
        start = ids.index(after) + 1 if after in ids else len(rows)
    chunk = rows[start : start + limit]
    has_more = start + limit < len(rows)
    return ck.Page(data=chunk, has_more=has_more, after=chunk[-1].id if chunk else None)


class ScriptedServer(ChatKitServer[dict]):
    """Replies like the hub's scripted agent; every optional hook answers something valid."""

    def __init__(self, store: MemoryStore, deltas: int, delay_ms: int) -> None:
        super().__init__(store, attachment_store=store)
        self.memory = store
        self.deltas = deltas
        self.delay = delay_ms / 1000

    async def respond(self, thread, input_user_message, context) -> AsyncIterator[Any]:
        if input_user_message is None:
            # After a client tool's output: quote it, as the hub's scripted agent does.
            rows = self.memory.items.get(thread.id, [])
            call = next(i for i in reversed(rows) if isinstance(i, ck.ClientToolCallItem))
            out = call.output if isinstance(call.output, str) else json.dumps(
                call.output, separators=(",", ":"))
            words = f"Tool {call.name} returned: {out}".split(" ")
            async for e in self.stream_words(thread, context, [w + " " for w in words]):
                yield e
            return
        text = "".join(getattr(p, "text", "") for p in input_user_message.content)
        if thread.title is None:
            thread.title = title_for(text)
        if text.strip().startswith("/tool "):
            name, _, args = text.strip()[len("/tool "):].strip().partition(" ")
            yield ck.ThreadItemDoneEvent(item=ck.ClientToolCallItem(
                id=self.store.generate_item_id("tool_call", thread, context),
                thread_id=thread.id,
                created_at=datetime.now(),
                status="pending",
                call_id=f"call_{len(self.memory.items.get(thread.id, []))}",
                name=name,
                arguments=json.loads(args or "{}"),
            ))
            return
        async for e in self.stream_words(thread, context, scripted_deltas(text, self.deltas), text):
            yield e

    async def stream_words(self, thread, context, deltas: list[str], text: str = "") -> AsyncIterator[Any]:
        item = ck.AssistantMessageItem(
            id=self.store.generate_item_id("message", thread, context),
            thread_id=thread.id,
            created_at=datetime.now(),
            content=[],
        )
        yield ck.ThreadItemAddedEvent(item=item)
        yield ck.ThreadItemUpdatedEvent(
            item_id=item.id,
            update=ck.AssistantMessageContentPartAdded(
                content_index=0, content=ck.AssistantMessageContent(text="", annotations=[])
            ),
        )
        full = ""
        for i, delta in enumerate(deltas):
            await asyncio.sleep(self.delay)
            if FAIL_MARKER in text and i == 1:
                raise RuntimeError("scripted upstream failure")
            full += delta
            yield ck.ThreadItemUpdatedEvent(
                item_id=item.id,
                update=ck.AssistantMessageContentPartTextDelta(content_index=0, delta=delta),
            )
        content = ck.AssistantMessageContent(text=full, annotations=[])
        yield ck.ThreadItemUpdatedEvent(
            item_id=item.id,
            update=ck.AssistantMessageContentPartDone(content_index=0, content=content),
        )
        yield ck.ThreadItemDoneEvent(item=item.model_copy(update={"content": [content]}))

    async def add_feedback(self, thread_id, item_ids, feedback, context) -> None:
        for item_id in item_ids:
            self.memory.feedback[item_id] = feedback

    async def transcribe(self, audio_input, context) -> ck.TranscriptionResult:
        return ck.TranscriptionResult(text=f"{len(audio_input.data)} bytes of audio")

    async def action(self, thread, action, sender, context) -> AsyncIterator[Any]:
        yield ck.NoticeEvent(level="info", message=f"action {action.type}")

    async def sync_action(self, thread, action, sender, context) -> ck.SyncCustomActionResponse:
        return ck.SyncCustomActionResponse()


def build_app(server: ScriptedServer) -> Starlette:
    async def endpoint(request: Request) -> Response:
        result = await server.process(await request.body(), {})
        if isinstance(result, StreamingResult):
            return StreamingResponse(result, media_type="text/event-stream")
        return Response(content=result.json, media_type="application/json")

    return Starlette(routes=[Route("/chatkit", endpoint, methods=["POST"])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--deltas", type=int, default=12)
    ap.add_argument("--delay-ms", type=int, default=40)
    args = ap.parse_args()
    # The scripted `[[fail]]` turn is expected: keep its traceback out of test output.
    logging.getLogger("chatkit").setLevel(logging.CRITICAL)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue from here on, before uvicorn takes over the socket
    app = build_app(ScriptedServer(MemoryStore(), args.deltas, args.delay_ms))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
