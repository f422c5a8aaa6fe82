#!/usr/bin/env bash
# Prints README's first command: the first line naming `npm run demo` in its "The two commands"
# section. .ci/run runs exactly that line, so README and CI cannot drift.
set -euo pipefail
cd "$(dirname "$0")/.."
line=$(awk '/^## The two commands/ { inside = 1; next } /^## / { inside = 0 }
  inside && /npm run demo/ && !/^[[:space:]]*#/ { print; exit }' README.md)
[[ -n $line ]] || { echo "README.md has no demo command under '## The two commands'" >&2; exit 1; }
printf '%s\n' "$line"
