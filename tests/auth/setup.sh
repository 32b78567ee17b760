#!/usr/bin/env bash
# The auth tests make their RSA and EC test keys with the openssl CLI. Idempotent: does
# nothing when openssl is already installed.
set -euo pipefail
if command -v openssl >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq openssl >/dev/null
command -v openssl >/dev/null
