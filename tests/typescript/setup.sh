#!/usr/bin/env bash
# Installs the TypeScript compiler (npm `typescript`, pinned in package-lock.json) into
# tests/typescript/node_modules for tests/typescript_decls.rs. Idempotent; a no-op when the
# installed tree already matches the lock file.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "typescript setup: installing Node.js and npm (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

stamp=node_modules/.sessionhub-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "typescript setup: npm ci in tests/typescript"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
