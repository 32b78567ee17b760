#!/usr/bin/env bash
# Creates tests/openapi/.venv with PyPI openapi-spec-validator (pinned), which tests/openapi.rs runs.
# Idempotent: a venv whose stamp matches the pinned requirements is left as it is.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../venv.sh" "$here" 'import openapi_spec_validator'
