#!/usr/bin/env bash
# Side by side: the same chain in consist (Rust) and in Python Consist, on this machine, in one go.
#
#   benches/compare/run.sh [N] [R] [REPEATS]     # default: 100 steps, 1000 rows, 3 repeats
#
# Each repeat runs both sides from a fresh directory: cold pass, warm pass in the same process,
# warm pass in a second process. Prints each side's medians (ms per step) and the ratios. Then,
# whole processes as a user runs them: a cold process, then a warm process over the same
# directory, each timed from its start to its exit, and the runs each side's catalog file holds
# afterwards (plain SQL: what every other tool sees). CONSIST_DEFER_HITS=1 runs consist's side
# with hit-only processes leaving their hits in the pending queue (an explicit option).
# Python Consist 0.3.5 goes into a virtualenv (.venv-compare, beside this script), with pytz,
# which its package forgets to require. The Rust side is built with consist's own code at -O2,
# as a project depending on consist gets it from `[profile.dev.package."*"]`.
set -euo pipefail
N=${1:-100}
R=${2:-1000}
REPEATS=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$here/.venv-compare"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'consist==0.3.5' pytz pandas pyarrow
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/consist-target}
o2=(--config 'profile.dev.package.consist.opt-level=2')
(cd "$root" && cargo build --quiet --example bench_chain "${o2[@]}")
rust="$CARGO_TARGET_DIR/debug/examples/bench_chain"

# Runs a catalog file holds, as plain SQL sees it (Python's duckdb, from the virtualenv).
runs() {
    "$venv/bin/python" -c 'import duckdb, sys
print(duckdb.connect(sys.argv[1], read_only=True).execute("SELECT count(*) FROM run").fetchone()[0])' "$1"
}
case "${CONSIST_DEFER_HITS:-}" in 1|true|yes) rust_defers=True ;; *) rust_defers=False ;; esac
results=$(mktemp)
processes=$(mktemp)
for i in $(seq "$REPEATS"); do
    echo "repeat $i/$REPEATS: consist-rs" >&2
    "$rust" "$N" "$R" --warm-process 2>/dev/null | tail -1 >>"$results"
    echo "repeat $i/$REPEATS: python consist" >&2
    dir=$(mktemp -d)
    both=$("$venv/bin/python" "$here/bench_chain.py" "$N" "$R" --dir "$dir/both" 2>/dev/null | tail -1)
    warm=$("$venv/bin/python" "$here/bench_chain.py" "$N" "$R" --dir "$dir/both" --pass warm 2>/dev/null | tail -1)
    python3 - "$both" "$warm" "$rust_defers" >>"$results" <<'EOF'
import json, sys
both, warm = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rust_defers = sys.argv[3] == "True"
both["warm_process_ms_per_step"] = warm["warm_ms_per_step"]
both["warm_process_first_step_ms"] = warm["first_step_ms"]
# Python Consist writes its database inside each step: nothing is left for the end of the pass.
both["warm_hit_ms_per_step"] = both["warm_ms_per_step"]
both["warm_process_hit_ms_per_step"] = warm["warm_ms_per_step"]
if rust_defers:
    both["warm_with_deferred_write_ms_per_step"] = both["warm_ms_per_step"]
    both["warm_with_share_of_deferred_write_ms_per_step"] = both["warm_ms_per_step"]
    both["warm_process_with_deferred_write_ms_per_step"] = warm["warm_ms_per_step"]
print(json.dumps(both))
EOF
    rm -rf "$dir"

    echo "repeat $i/$REPEATS: whole processes" >&2
    dir=$(mktemp -d)
    t0=$(date +%s%N)
    "$rust" "$N" "$R" --cold-only "$dir/rs" >/dev/null 2>&1
    t1=$(date +%s%N)
    "$rust" "$N" "$R" --warm-only "$dir/rs" >/dev/null 2>&1
    t2=$(date +%s%N)
    "$venv/bin/python" "$here/bench_chain.py" "$N" "$R" --dir "$dir/py" --pass cold >/dev/null 2>&1
    t3=$(date +%s%N)
    "$venv/bin/python" "$here/bench_chain.py" "$N" "$R" --dir "$dir/py" --pass warm >/dev/null 2>&1
    t4=$(date +%s%N)
    echo "$(( t1 - t0 )) $(( t2 - t1 )) $(runs "$dir/rs/provenance.duckdb") $(( t3 - t2 )) $(( t4 - t3 )) $(runs "$dir/py/provenance.duckdb")" >>"$processes"
    rm -rf "$dir"
done

python3 - "$results" "$N" "$R" "$REPEATS" <<'EOF'
import json, statistics, sys
path, n, r, k = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
sides = {s: [x for x in rows if x["impl"] == s] for s in ("consist-rs", "python-consist")}
fields = [
    ("cold_ms_per_step", "cold, ms/step"),
    ("cold_bookkeeping_ms_per_step", "cold bookkeeping (no body work, no Parquet), ms/step"),
    ("warm_ms_per_step", "warm, same process, ms/step"),
    ("warm_process_ms_per_step", "warm, second process, ms/step"),
    ("warm_with_share_of_deferred_write_ms_per_step", "warm, same process, + its share of the db write, ms/step"),
    ("warm_with_deferred_write_ms_per_step", "warm, same process, + a whole db write, ms/step"),
    ("warm_process_with_deferred_write_ms_per_step", "warm, second process, + a whole db write, ms/step"),
    ("warm_hit_ms_per_step", "warm hits before the tracker's drop, ms/step"),
    ("warm_process_hit_ms_per_step", "same, second process, ms/step"),
    ("warm_process_first_step_ms", "second process: start to first step done, ms"),
]
print(f"chain of {n} steps, {r} rows, median of {k} repeats")
print(f"{'':60} {'consist-rs':>12} {'python':>12} {'ratio':>9}")
for key, label in fields:
    if any(x.get(key) is None for v in sides.values() for x in v):
        continue  # not measured at this N (the share of a queued write needs N <= 256)
    med = {s: statistics.median(x[key] for x in v) for s, v in sides.items()}
    ratio = med["python-consist"] / med["consist-rs"]
    print(f"{label:60} {med['consist-rs']:12.3f} {med['python-consist']:12.1f} {ratio:8.0f}x")
rs = sides["consist-rs"]
print(f"consist-rs, per process: the tracker's drop (last records and the database write) "
      f"{statistics.median(x['warm_close_ms'] for x in rs):.1f} ms warm, "
      f"{statistics.median(x['cold_close_ms'] for x in rs):.1f} ms cold"
      + (f"; the database write a deferring warm pass leaves (paid by the next run that executes, "
         f"or one hit-only process in 16) {statistics.median(x['warm_deferred_write_ms'] for x in rs):.1f} ms "
         f"alone" if rs[0].get("warm_deferred_write_ms") is not None else ""))
EOF
python3 - "$processes" "$N" <<'EOF'
import statistics, sys
rows = [[int(v) for v in l.split()] for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
med = lambda i: statistics.median(r[i] for r in rows)
print(f"whole processes (start to exit), median of {len(rows)}; runs in the catalog file afterwards (of {2 * n})")
print(f"{'':60} {'consist-rs':>12} {'python':>12} {'ratio':>9}")
for label, rs, py in [("cold process, s", 0, 3), ("warm process, s", 1, 4)]:
    print(f"{label:60} {med(rs) / 1e9:12.3f} {med(py) / 1e9:12.3f} {med(py) / med(rs):8.0f}x")
print(f"{'runs in the file (min over repeats)':60} {min(r[2] for r in rows):12d} {min(r[5] for r in rows):12d}")
EOF
rm -f "$results" "$processes"
