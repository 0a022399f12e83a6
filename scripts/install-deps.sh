#!/usr/bin/env bash
# Installs what Spool's demo and tests need on Debian/Ubuntu when it is missing:
# redis-server always, openssl (the TLS tests make their certificates with it);
# chromium + chromium-driver with --browser (browser tests), and python3 with
# pip there too (the cross-language test fetches redis-py with it).
set -euo pipefail

want=()
command -v redis-server >/dev/null 2>&1 || want+=(redis-server)
command -v openssl >/dev/null 2>&1 || want+=(openssl)
if [[ "${1:-}" == "--browser" ]]; then
  command -v chromium >/dev/null 2>&1 || want+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || want+=(chromium-driver)
  # The cross-language test's Python and the pip that fetches redis-py.
  command -v python3 >/dev/null 2>&1 || want+=(python3)
  python3 -m pip --version >/dev/null 2>&1 || want+=(python3-pip)
fi
[[ ${#want[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${want[*]} — install them with your package manager" >&2
  exit 1
fi
sudo=""
if [[ "$(id -u)" != "0" ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "missing: ${want[*]} — run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing ${want[*]} (apt-get)…" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
# The Debian package starts a system redis on 6379; Spool never uses it.
