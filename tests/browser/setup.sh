#!/usr/bin/env bash
# Installs what the browser tests need: Debian's Chromium and npm playwright-core.
# Idempotent and fast when everything is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Inter is the page's first-choice font; without it screenshots fall back to DejaVu.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/fonts/opentype/inter ] || [ -d /usr/share/fonts/truetype/inter ] || need+=(fonts-inter)
command -v npm >/dev/null || need+=(nodejs npm)
if [ "${#need[@]}" -gt 0 ]; then
  echo "browser setup: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" fonts-dejavu-core >/dev/null
fi

major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "browser setup: playwright-core needs Node.js 20 or newer, found $(node --version)" >&2
  exit 1
fi

cd "$here"
# Reinstall only when the installed playwright-core differs from the locked one.
want="$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")"
have="$(node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  echo "browser setup: npm ci"
  # Playwright must never download a browser of its own: Debian's chromium is used.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
echo "browser setup: ok ($(/usr/bin/chromium --version 2>/dev/null | head -1))"
