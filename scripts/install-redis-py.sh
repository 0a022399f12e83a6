#!/usr/bin/env bash
# Installs redis-py for the cross-language test (tests/tests/python_producer.rs)
# and prints the directory to put on PYTHONPATH:
#
#   PYTHONPATH=$(scripts/install-redis-py.sh) python3 tests/python/producer.py …
#
# The wheels (redis-py, and async-timeout, which it imports on Python
# < 3.11.3) are fetched from PyPI with `pip download` at pinned versions,
# checked against their sha256, and unpacked with Python's zipfile into
# ${XDG_CACHE_HOME:-$HOME/.cache}/spool/redis-py: no pip install, no
# virtualenv, nothing outside that folder. A second run only prints the path.
set -euo pipefail

wheels=(
  "redis==5.2.1 redis-5.2.1-py3-none-any.whl ee7e1056b9aea0f04c6c2ed59452947f34c4940ee025f5dd83e6a6418b6989e4"
  "async-timeout==5.0.1 async_timeout-5.0.1-py3-none-any.whl 39e3809566ff85354557ec2398b55e096c8364bacac9405a7a1fa429e77fe76c"
)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/spool/redis-py"
site="$cache/site-5.2.1"

fail() {
  echo "install-redis-py: $*" >&2
  exit 1
}

if [[ -f "$site/.complete" ]]; then
  echo "$site"
  exit 0
fi
command -v python3 >/dev/null 2>&1 || fail "python3 is missing (scripts/install-deps.sh --browser installs it)"
python3 -m pip --version >/dev/null 2>&1 || fail "pip is missing (scripts/install-deps.sh --browser installs python3-pip)"
mkdir -p "$cache/wheels"
rm -rf "$site.tmp"
mkdir -p "$site.tmp"
for entry in "${wheels[@]}"; do
  read -r spec file sha <<<"$entry"
  if [[ ! -f "$cache/wheels/$file" ]]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$cache/wheels" "$spec" >&2 ||
      fail "pip download $spec failed"
  fi
  echo "$sha  $cache/wheels/$file" | sha256sum --check --quiet - || fail "$file: sha256 mismatch"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$cache/wheels/$file" "$site.tmp"
done
touch "$site.tmp/.complete"
rm -rf "$site"
mv "$site.tmp" "$site"
echo "$site"
