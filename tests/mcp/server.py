"""A real MCP server for tests/mcp_tools.rs, built with the official Python SDK (`mcp`, 2.x:
`MCPServer`, formerly FastMCP) and served over streamable HTTP at /mcp.

    python server.py [--port P] [--token T]

Prints `listening on PORT` on stdout once it accepts connections (port 0 picks a free one).

Tools: `add`, `echo`, `fail` (a tool error), `sleep` (long; records its cancellation),
`picture` (an image and a text part), `grow` (adds a tool at run time and sends
notifications/tools/list_changed) and, through `grow`, any number of `extra` tools.

`GET /state` (not an MCP tool, so no model ever sees it) answers what the tests check:
the `sleep` calls started and cancelled (by request id), and how many MCP requests came with
and without the right bearer token. With `--token`, a request to /mcp without
`Authorization: Bearer T` gets 401.
"""

import argparse
import asyncio
import socket
import sys

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent, TextContent
from starlette.requests import Request
from starlette.responses import JSONResponse

STATE = {"started": [], "cancelled": [], "authorized": 0, "unauthorized": 0}

app = MCPServer("sessionhub-test", log_level="WARNING")


@app.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@app.tool(description="Give the text back.")
def echo(text: str) -> str:
    return text


@app.tool(description="Always fails with the given message.")
def fail(message: str) -> str:
    raise ToolError(message)


@app.tool(description="Sleep for a number of seconds, then say so.")
async def sleep(seconds: float, ctx: Context) -> str:
    rid = ctx.request_id
    STATE["started"].append(rid)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        STATE["cancelled"].append(rid)
        raise
    return f"slept {seconds} s"


@app.tool(description="A one-pixel image and a caption.")
def picture() -> list:
    return [
        TextContent(type="text", text="a red pixel"),
        ImageContent(
            type="image",
            mime_type="image/png",
            data="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==",
        ),
    ]


@app.tool(description="Add a tool named `name` (it echoes its input) and announce the change.")
async def grow(name: str, ctx: Context) -> str:
    def extra(text: str) -> str:
        return f"{name}: {text}"

    app.add_tool(extra, name=name, description=f"A tool added at run time ({name}).")
    await ctx.session.send_tool_list_changed()
    return f"added {name}"


@app.custom_route("/state", methods=["GET"])
async def state(_request: Request) -> JSONResponse:
    return JSONResponse(STATE)


def with_token(inner, token):
    """ASGI middleware: /mcp requires `Authorization: Bearer <token>` when a token is set."""

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/mcp"):
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"").decode("latin-1")
            if token is None or given == f"Bearer {token}":
                STATE["authorized"] += 1
            else:
                STATE["unauthorized"] += 1
                await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
                return
        await inner(scope, receive, send)

    return asgi


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token")
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    port = sock.getsockname()[1]

    starlette = app.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(with_token(starlette, args.token), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving
            return
        await asyncio.sleep(0.01)
    print(f"listening on {port}", flush=True)
    await serving


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
