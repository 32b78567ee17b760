#!/usr/bin/env bash
# Shared by the tests' setup scripts: make `<dir>/.venv` from `<dir>/requirements.txt`, unless a
# venv whose stamp matches the requirements already passes `<import check>`.
#   bash tests/venv.sh <dir> '<python import statement>'
set -euo pipefail
dir="$1"
check="$2"
venv="$dir/.venv"
req="$dir/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && "$venv/bin/python" -c "$check" 2>/dev/null; then
  exit 0
fi

py="${PYTHON:-python3}"
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian's python3 ships venv/ensurepip separately.
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
    py=python3
  else
    echo "$dir/setup.sh: python3 with the venv module is required" >&2
    exit 1
  fi
fi

rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c "$check"
echo "$want" >"$stamp"
