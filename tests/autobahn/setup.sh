#!/usr/bin/env bash
# Installs the Autobahn|Testsuite (wstest, Python 2 only) for tests/autobahn.rs: a Debian 11
# (bullseye) chroot made with debootstrap, with python2.7, pip 20.3.4 from its wheel,
# setuptools<45 and wheel<0.38, then autobahntestsuite==25.10.1 (see
# ../shared/research/reliability.md, section 2.1). There is no Docker engine here, and a chroot
# shares the host's network namespace, so wstest inside it reaches the hub on 127.0.0.1.
#
# The chroot is cached outside the work tree (SESSIONHUB_AUTOBAHN_ROOT, default
# /var/cache/sessionhub/autobahn-bullseye): about 4-5 minutes the first time, a second or so
# after. Idempotent: each stage leaves a stamp, an interrupted debootstrap starts over.
set -euo pipefail
root="${SESSIONHUB_AUTOBAHN_ROOT:-/var/cache/sessionhub/autobahn-bullseye}"
want="autobahntestsuite==25.10.1 pip==20.3.4 setuptools<45 wheel<0.38"
ready="$root/.sessionhub-ready"
in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_PYTHON_VERSION_WARNING=1 "$@"
}

if [ -f "$ready" ] && [ "$(cat "$ready")" = "$want" ] && in_root wstest --help >/dev/null 2>&1; then
  echo "autobahn setup: ok (cached in $root)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/autobahn/setup.sh: root is needed for debootstrap and chroot" >&2
  exit 1
fi
start=$(date +%s)

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "autobahn setup: apt-get install debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
fi

# Stage 1: the chroot. Built aside and moved into place, so a half-made one is never used.
if [ ! -x "$root/usr/bin/python2.7" ]; then
  partial="$root.partial"
  rm -rf "$partial"
  mkdir -p "$(dirname "$root")"
  pkgs=python2.7,python2.7-dev,build-essential,libffi-dev,libssl-dev,ca-certificates
  echo "autobahn setup: debootstrap bullseye into $root (a few minutes)"
  # bullseye moves to archive.debian.org once its long-term support ends.
  if ! debootstrap --variant=minbase --include="$pkgs" bullseye "$partial" \
    http://deb.debian.org/debian >"$partial.log" 2>&1; then
    echo "autobahn setup: deb.debian.org failed, trying archive.debian.org" >&2
    rm -rf "$partial"
    debootstrap --variant=minbase --no-check-gpg --include="$pkgs" bullseye "$partial" \
      http://archive.debian.org/debian >"$partial.log" 2>&1 || {
      tail -20 "$partial.log" >&2
      exit 1
    }
  fi
  rm -rf "$root"
  mv "$partial" "$root"
  mv "$partial.log" "$root/debootstrap.log"
fi

# Stage 2: pip and the suite. The host's CA bundle and resolver let pip reach the index.
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/certs/host-ca.crt"
wheels="$root/tmp/wheels"
mkdir -p "$wheels"
pipwhl="$wheels/pip-20.3.4-py2.py3-none-any.whl"
if [ ! -f "$pipwhl" ]; then
  # pip 20.3.4 is the last pip for Python 2; the host's pip fetches its universal wheel.
  python3 -m pip download --quiet --no-deps --only-binary=:all: pip==20.3.4 -d "$wheels"
fi
if ! in_root python2.7 -m pip --version 2>/dev/null | grep -q '^pip 20.3.4'; then
  echo "autobahn setup: pip 20.3.4 from its wheel"
  in_root python2.7 /tmp/wheels/pip-20.3.4-py2.py3-none-any.whl/pip install --quiet \
    --no-index /tmp/wheels/pip-20.3.4-py2.py3-none-any.whl
fi
echo "autobahn setup: pip install setuptools<45 wheel<0.38 autobahntestsuite==25.10.1"
# Without an old setuptools first, the suite's dependencies fail with "No module named setuptools".
in_root python2.7 -m pip install --quiet 'setuptools<45' 'wheel<0.38'
in_root python2.7 -m pip install --quiet autobahntestsuite==25.10.1
in_root wstest --help >/dev/null
echo "$want" >"$ready"
echo "autobahn setup: ready in $(($(date +%s) - start)) s ($root)"
