#!/usr/bin/env bash
# Many writers, one catalog: P processes x S steps each (half the signatures shared by every
# process, half their own), into one PostgreSQL catalog and into one DuckDB file, on this machine.
# Prints wall time, steps/s, how many steps executed against how many distinct signatures, and
# how many runs the catalog recorded (each must be there once).
#
#   benches/contention.sh [P] [S]           one host: every process shares a run dir and local state
#   benches/contention.sh [P] [S] --hosts   many hosts: each process has its own host name, run dir
#                                           and local state (PostgreSQL only: hosts share nothing
#                                           but the catalog, and take turns through its leases)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/consist-target}"
procs=${1:-8}
steps=${2:-50}
hosts=${3:-}
cargo build --quiet --bin consist-test-worker
worker="$CARGO_TARGET_DIR/debug/consist-test-worker"
work=$(mktemp -d)
. .ci/pg-cluster.sh
pg_cluster_start "$work"
trap 'pg_cluster_stop "$work"; rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache"
distinct=$((steps / 2 + procs * (steps - steps / 2)))

# One backend: start every process at once, wait for all, print the figures.
run() {
  local name=$1 catalog=$2 run_dir=$3 start end
  start=$(date +%s.%N)
  for p in $(seq 1 "$procs"); do
    values=$(seq 0 $((steps / 2 - 1)); seq $((1000 * p)) $((1000 * p + steps - steps / 2 - 1)))
    if [ "$hosts" = "--hosts" ]; then
      # shellcheck disable=SC2086
      CONSIST_HOST="host-$p" XDG_CACHE_HOME="$work/cache-$p" \
        "$worker" steps "$run_dir/host-$p" "$catalog" $values >"$work/$name.$p.out" &
    else
      # shellcheck disable=SC2086
      "$worker" steps "$run_dir" "$catalog" $values >"$work/$name.$p.out" &
    fi
  done
  wait
  end=$(date +%s.%N)
  recorded=$("$worker" cli summary --json --db-path "$catalog" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["runs"] + s.get("pending", 0))')
  python3 - "$name" "$start" "$end" "$procs" "$steps" "$work" "$distinct" "$recorded" <<'PY'
import sys, glob
name, start, end, procs, steps, work, distinct, recorded = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7]), int(sys.argv[8])
lines = [l.split() for f in glob.glob(f"{work}/{name}.*.out") for l in open(f) if l.startswith(("executed ", "hit "))]
total = procs * steps
assert len(lines) == total, f"{name}: {len(lines)} of {total} steps reported"
executed = sum(1 for l in lines if l[0] == "executed")
ids = {l[1] for l in lines}
secs = end - start
print(f"{name:10} {procs} x {steps} steps: {secs:6.2f} s, {total / secs:7.1f} steps/s, "
      f"{executed} executed for {distinct} distinct signatures ({100 * (executed - distinct) / distinct:+.1f}%), "
      f"{recorded} of {total} runs recorded")
assert recorded == total and len(ids) == total, f"{name}: runs lost or recorded twice"
PY
}

run postgres "$PG_URL" "$work/pg-runs"
if [ "$hosts" != "--hosts" ]; then
  run duckdb "$work/duck/provenance.duckdb" "$work/duck"
fi
