#!/usr/bin/env bash
# The long soak: one `npm run soak` per seed, one after the other, from a snapshot of the
# committed code (so that later edits in the worktree do not change a run halfway), then the
# Markdown summary of all of them.
#
#   NATMAPPER_LAB_INSTANCE=x scripts/soak-long.sh OUT_DIR MINUTES_PER_SEED MAPPINGS SEED...
#
# With SOAK_INSTANCES="a b c" (one lab instance per seed, see lab/README.md) the seeds run at the
# same time, each in a lab of its own: hours of soak in one hour of wall time.
#
# Writes OUT_DIR/soak-SEED.log (the run's log), OUT_DIR/soak-SEED.json (its results),
# OUT_DIR/commit.txt and, at the end, OUT_DIR/summary.md (scripts/soak-report.ts). To put the
# results into RELIABILITY.md:
#   node --import tsx scripts/soak-report.ts OUT_DIR --update RELIABILITY.md
set -uo pipefail
(($# >= 4)) || { echo "usage: $0 OUT_DIR MINUTES_PER_SEED MAPPINGS SEED..." >&2; exit 2; }
out=$(realpath -m "$1") minutes=$2 mappings=$3
shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out/code"
git -C "$root" rev-parse HEAD >"$out/commit.txt"
git -C "$root" archive HEAD | tar -x -C "$out/code"
ln -sfn "$root/node_modules" "$out/code/node_modules"
cd "$out/code" || exit 1
status=0
run_seed() {
  local seed=$1
  echo "$(date -u +%FT%TZ) seed $seed: $minutes min, $mappings mappings per NAT${NATMAPPER_LAB_INSTANCE:+, lab instance $NATMAPPER_LAB_INSTANCE}" >>"$out/progress.txt"
  node --import tsx --expose-gc scripts/soak.ts --minutes "$minutes" --mappings "$mappings" --seed "$seed" --out "$out" >"$out/soak-$seed.log" 2>&1
  local rc=$?
  echo "$(date -u +%FT%TZ) seed $seed: exit $rc" >>"$out/progress.txt"
  return $rc
}
read -r -a instances <<<"${SOAK_INSTANCES:-}"
if ((${#instances[@]} > 0)); then
  (($# <= ${#instances[@]})) || { echo "SOAK_INSTANCES names ${#instances[@]} lab instances for $# seeds" >&2; exit 2; }
  pids=()
  i=0
  for seed in "$@"; do
    NATMAPPER_LAB_INSTANCE=${instances[i]} run_seed "$seed" &
    pids+=($!)
    i=$((i + 1))
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
else
  for seed in "$@"; do run_seed "$seed" || status=1; done
fi
node --import tsx scripts/soak-report.ts "$out" >"$out/summary.md" 2>&1 || status=1
echo "$(date -u +%FT%TZ) done (status $status); summary in $out/summary.md" >>"$out/progress.txt"
exit $status
