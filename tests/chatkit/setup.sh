#!/usr/bin/env bash
# Creates tests/chatkit/.venv with the ChatKit conformance oracle (openai-chatkit, pinned).
# Idempotent: a venv whose stamp matches the pinned requirements is left as it is.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../venv.sh" "$here" 'import chatkit.types, uvicorn'
