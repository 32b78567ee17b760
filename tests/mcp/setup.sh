#!/usr/bin/env bash
# Creates tests/mcp/.venv with the official MCP Python SDK (mcp, pinned) for the test MCP server.
# Idempotent: a venv whose stamp matches the pinned requirements is left as it is.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../venv.sh" "$here" 'import mcp.server.mcpserver, uvicorn'
