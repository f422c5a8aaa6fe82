#!/usr/bin/env bash
# The whole test run CI makes (.ci/run): build, typecheck, lint, the API reference, then the suite
# on every Node.js natmapper supports, two runs side by side in separate labs so the wall time stays
# near one run:
#   - this machine's Node (20): every unit and lab file, the 1000-mapping scale test included
#     (the libp2p file needs Node 22+ and is left out, by name, not skipped);
#   - Node 22, then Node 24 (fetched by scripts/node-binaries.sh), in lab instance
#     "${NATMAPPER_LAB_INSTANCE}n" and a network namespace of their own: every unit and lab file
#     including js-libp2p's, except the scale test, which is bound by miniupnpd's speed, not
#     Node's, and takes ~9 minutes, and the install test (shell scripts and the package registry).
# The newer Nodes' output is printed after the first run's. Fails if any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

npm run build
npm run typecheck
npm run lint
npm run docs   # the API reference: an undocumented export fails it (typedoc.json)

# (An assignment, not a process substitution, so that a failed fetch stops the run under set -e.)
listing=$(scripts/node-binaries.sh 22 24)
mapfile -t binaries <<<"$listing"
[ "${#binaries[@]}" = 2 ] || { echo "scripts/test-every-node.sh: expected Node 22 and 24, got: $listing" >&2; exit 2; }
# The package test (test/lab/package.test.ts) also runs the tarball on a Node without require() of
# ES modules; fetched here, since the runs below have no network.
scripts/node-binaries.sh 20.15.1 >/dev/null
logs=$(mktemp -d)
base_instance=${NATMAPPER_LAB_INSTANCE:-}
if [ "${#base_instance}" -gt 3 ]; then
  echo "scripts/test-every-node.sh: NATMAPPER_LAB_INSTANCE '$base_instance' leaves no room for the second lab's suffix (3 characters at most)" >&2
  exit 2
fi
started=$SECONDS

(
  export NATMAPPER_LAB_INSTANCE="${base_instance}n"
  for entry in "${binaries[@]}"; do
    major=${entry%% *}
    # A network namespace of its own (loopback only): the fake gateways of the unit tests bind fixed
    # loopback addresses, which the run on this machine's Node binds at the same time. Lab tests
    # still reach their lab (ip netns exec works from any namespace). The install test is left to
    # the first run: it tests shell scripts, not Node, and needs the package registry.
    if unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh \
        node scripts/test.mjs --node "${entry#* }" --exclude test/lab/scale.test.ts --exclude test/lab/install.test.ts \
        >"$logs/node$major.log" 2>&1; then
      echo "Node $major: passed ($((SECONDS - started)) s since start)" >>"$logs/summary"
    else
      echo "Node $major: FAILED ($((SECONDS - started)) s since start)" >>"$logs/summary"
    fi
  done
) &
newer=$!

status=0
node scripts/test.mjs 2>&1 | tee "$logs/this-node.log" || status=$?
echo "Node $(node -p process.versions.node): $([ "$status" = 0 ] && echo passed || echo FAILED) ($((SECONDS - started)) s)" >>"$logs/summary"
wait "$newer"

for entry in "${binaries[@]}"; do
  major=${entry%% *}
  echo
  echo "======== Node $major (${entry#* }) ========"
  cat "$logs/node$major.log"
done
# The failures again, last, where a reader of the end of CI's output sees them: the first run's
# log is printed long before the end.
for log in "$logs"/*.log; do
  if grep -q '^✖ failing tests:' "$log"; then
    echo
    echo "======== failing tests, $(basename "$log" .log) ========"
    sed -n '/^✖ failing tests:/,$p' "$log" | head -n 200
  fi
done
echo
echo "======== summary ========"
cat "$logs/summary"
failed=no
grep -q FAILED "$logs/summary" && failed=yes
# One closing line for the runs on every Node version together, from their own counts.
cat "$logs"/*.log | awk '/^ℹ pass / { pass += $3 } /^ℹ fail / { fail += $3 } /^ℹ skipped / { skip += $3 }
  END { printf "total: %d passed, %d failed, %d skipped\n", pass, fail, skip }'
rm -rf "$logs"
[ "$failed" = no ]
