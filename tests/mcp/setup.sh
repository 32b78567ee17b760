#!/usr/bin/env bash
# Creates tests/mcp/.venv with the official MCP Python SDK (mcp, pinned) for the test MCP server.
# Idempotent: a venv whose stamp matches the pinned requirements is left as it is.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && "$venv/bin/python" -c 'import mcp.server.mcpserver, uvicorn' 2>/dev/null; then
  exit 0
fi

py="${PYTHON:-python3}"
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian's python3 ships venv/ensurepip separately.
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
    py=python3
  else
    echo "tests/mcp/setup.sh: python3 with the venv module is required" >&2
    exit 1
  fi
fi

rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c 'import mcp.server.mcpserver, uvicorn'
echo "$want" >"$stamp"
echo "tests/mcp/.venv ready"
