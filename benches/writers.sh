#!/usr/bin/env bash
# N writer processes x 50 steps into one DuckDB catalog while the CLI lists runs in a loop: wall
# time, how often writers and CLI calls waited for the file, the slowest CLI call, failures, and
# whether every run reached the database once. usage: benches/writers.sh [N]   (default 32)
set -euo pipefail
N=${1:-32}
cd "$(dirname "$0")/.."
cargo build -q --bin consist-test-worker
W="${CARGO_TARGET_DIR:-target}/debug/consist-test-worker"
W=$(realpath "$W")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
"$W" steps "$dir/runs" "$dir/p.duckdb" 999999 >/dev/null   # the database exists before the CLI polls
start=$(date +%s%N)
pids=()
for p in $(seq 0 $((N - 1))); do
    CONSIST_LOG=consist=debug "$W" steps "$dir/runs" "$dir/p.duckdb" $(seq $((p * 1000)) $((p * 1000 + 49))) \
        >"out.$p" 2>"err.$p" &
    pids+=($!)
done
(
    while [ ! -f done ]; do
        s=$(date +%s%N)
        status=0
        CONSIST_LOG=consist=debug "$W" cli --wait 10 runs --json --limit 5 --db-path p.duckdb >/dev/null 2>>cli.err || status=$?
        echo "$status $((($(date +%s%N) - s) / 1000000))" >>cli.log
    done
) &
poller=$!
wait "${pids[@]}"
end=$(date +%s%N)
touch done
wait "$poller"
echo "$N writers x 50 steps: $(((end - start) / 1000000)) ms; executed $(cat out.* | grep -c '^executed ')"
cat err.* | grep -c "after waiting" | sed 's/^/writers waited for the file: /' || true
awk '{n++; if ($1 != 0) f++; if ($2 > m) m = $2} END {print n " CLI calls, " f + 0 " failed, slowest " m " ms"}' cli.log
grep -c "after waiting" cli.err | sed 's/^/CLI calls that waited: /' || true
"$W" cli query --json "SELECT count(*) AS runs, count(DISTINCT id) AS distinct_ids FROM run WHERE model_name = 'square'" \
    --db-path p.duckdb | tr -d ' \n'
echo "   (expected $((N * 50 + 1)) of each)"
