#!/usr/bin/env bash
# Push and pull through a remote: the iterative example's artifacts, then N small objects (one
# value output per step of `consist-test-worker steps`), against an s3s-fs server on loopback
# (.ci/run installs it; set S3S_FS or put s3s-fs on PATH). Prints objects/s and MB/s for each.
# usage: benches/remote.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/consist-target}"
export PATH="${CONSIST_TOOLS:-$HOME/.cache/consist-tools}/bin:$PATH"
n=${1:-10000}
cargo build --quiet --bin consist-test-worker --example iterative_workflow
cargo build --quiet -p consist --bin consist
worker="$CARGO_TARGET_DIR/debug/consist-test-worker"
consist="$CARGO_TARGET_DIR/debug/consist"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/s3/bench"
"${S3S_FS:-s3s-fs}" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret "$work/s3" >/dev/null 2>&1 &
server=$!
trap 'kill $server; rm -rf "$work"' EXIT
sleep 1
export AWS_ENDPOINT="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=bench \
  AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1

# One transfer: run it, time it, print the figures.
measure() {
  local label=$1 start end out
  shift
  start=$(date +%s.%N)
  out=$("$@" --json)
  end=$(date +%s.%N)
  python3 - "$label" "$start" "$end" "$out" <<'PY'
import json, sys
label, start, end, report = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
secs = end - start
moved, size = report["moved"], report["bytes"]
print(f"{label:34} {moved:6} objects {size / 1e6:8.2f} MB in {secs:6.2f} s: {moved / secs:8.1f} objects/s {size / 1e6 / secs:7.2f} MB/s")
assert not report["failed"], report["failed"]
PY
}

(cd "$work" && "$CARGO_TARGET_DIR/debug/examples/iterative_workflow" --run-dir "$work/iter" --iterations 3 --extended 4 >/dev/null)
measure "push, iterative example" "$consist" --db-path "$work/iter/provenance.duckdb" --remote s3://bench/iter remote push
mv "$work/iter/outputs" "$work/iter-outputs-elsewhere"   # another host: the files are not here
measure "pull, iterative example" "$consist" --db-path "$work/iter/provenance.duckdb" --remote s3://bench/iter \
  remote pull --run-dir "$work/iter-pulled"

seq 0 $((n - 1)) | xargs "$worker" steps "$work/small" "$work/small/provenance.duckdb" >/dev/null
measure "push, $n small objects" "$consist" --db-path "$work/small/provenance.duckdb" --remote s3://bench/small remote push
measure "push again (all there: resumes)" "$consist" --db-path "$work/small/provenance.duckdb" --remote s3://bench/small remote push
mv "$work/small/outputs" "$work/small-outputs-elsewhere"
measure "pull, $n small objects" "$consist" --db-path "$work/small/provenance.duckdb" --remote s3://bench/small \
  remote pull --run-dir "$work/small-pulled"
