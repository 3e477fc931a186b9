"""Chain benchmark for the Python package Consist (PyPI `consist`).

Measures the per-step overhead of Consist's cached, provenance-tracked runs on
a linear chain of N steps over an R-row table:

  step 0    "ingest":  raw.csv (declared input, content-hashed) -> Parquet
  step 1..  "add_one": previous step's output artifact -> value + 1 -> Parquet

Every step writes to its run's managed output path (consist.output_path) and
declares outputs=["table"]. The cold pass must execute every step (no cache
hit); the warm pass (same tracker, or a second process with --pass warm) must
be all cache hits with no step body executed. Inside each body, `work`
(read + compute) and `write` (parquet write) are timed; bookkeeping is what
remains of the wall time. The final Parquet is checked: value[i] == i%1000 + N-1.

Usage:
  python3 bench_chain.py N R [--dir DIR] [--pass both|cold|warm]

  --dir   working dir holding raw.csv, runs/ and provenance.duckdb
          (default: a fresh temp dir, deleted at the end)
  --pass  both (default): cold then warm in one process; cold / warm: only
          that pass in DIR (run `--pass cold` then `--pass warm` in two
          processes to measure a warm start from disk).

Output: one JSON line (last line of stdout); everything else goes to stderr.
"""

import time

T0 = time.perf_counter()

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

T_IMPORT0 = time.perf_counter()
import consist
from consist import ExecutionOptions, Tracker

IMPORT_MS = (time.perf_counter() - T_IMPORT0) * 1e3

import pandas as pd

logging.getLogger("consist").setLevel(logging.ERROR)

STATS = {"work": 0.0, "write": 0.0, "calls": 0}


def _write(df: pd.DataFrame) -> Path:
    t = time.perf_counter()
    out = consist.output_path("table")
    df.to_parquet(out, index=False)
    STATS["write"] += time.perf_counter() - t
    return out


def ingest(raw: Path) -> Path:
    STATS["calls"] += 1
    t = time.perf_counter()
    df = pd.read_csv(raw)
    STATS["work"] += time.perf_counter() - t
    return _write(df)


def add_one(table: Path) -> Path:
    STATS["calls"] += 1
    t = time.perf_counter()
    df = pd.read_parquet(table)
    df["value"] = df["value"] + 1
    STATS["work"] += time.perf_counter() - t
    return _write(df)


def run_chain(tracker: Tracker, csv: Path, n: int, first_step: list):
    """Run the N-step chain; return (wall seconds, hits, last RunResult)."""
    opts = ExecutionOptions(input_binding="paths")
    STATS.update(work=0.0, write=0.0, calls=0)
    hits, prev, results, step_ms = 0, None, [], []
    t = time.perf_counter()
    for k in range(n):
        ts = time.perf_counter()
        if k == 0:
            r = tracker.run(fn=ingest, name="ingest", inputs={"raw": csv},
                            outputs=["table"], execution_options=opts)
        else:
            r = tracker.run(fn=add_one, name="add_one",
                            inputs={"table": prev.outputs["table"]},
                            outputs=["table"], execution_options=opts)
        step_ms.append((time.perf_counter() - ts) * 1e3)
        if not first_step:
            first_step.append((time.perf_counter() - T0) * 1e3)
        assert r.cache_hit == bool(r.run.meta.get("cache_hit")), (k, r.cache_hit, r.run.meta)
        hits += r.cache_hit
        results.append(r)
        prev = r
    wall = time.perf_counter() - t
    q = max(1, n // 5)
    print(f"step ms: first {q} avg {sum(step_ms[:q]) / q:.1f}, last {q} avg {sum(step_ms[-q:]) / q:.1f}",
          file=sys.stderr)
    # Distinct runs and distinct output artifacts per step (no step reused k-1).
    assert len({r.run.id for r in results}) == n
    assert len({r.outputs["table"].hash for r in results}) == n
    return wall, hits, prev


def check_final(r, n: int, rows: int) -> None:
    df = pd.read_parquet(r.outputs["table"].path)
    expected = pd.Series(range(rows)) % 1000 + (n - 1)
    assert len(df) == rows and (df["value"].to_numpy() == expected.to_numpy()).all()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("r", type=int)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--pass", dest="mode", choices=["both", "cold", "warm"], default="both")
    a = ap.parse_args()
    d = a.dir or Path(tempfile.mkdtemp(prefix="bench_chain_"))
    d.mkdir(parents=True, exist_ok=True)
    csv = d / "raw.csv"
    if a.mode != "warm" or not csv.exists():
        pd.DataFrame({"id": range(a.r), "value": [i % 1000 for i in range(a.r)]}).to_csv(csv, index=False)
    print(f"dir: {d}", file=sys.stderr)

    tracker = Tracker(run_dir=d / "runs", db_path=d / "provenance.duckdb")
    first_step: list = []
    out = {"impl": "python-consist", "version": consist.__version__, "steps": a.n, "rows": a.r}
    for k in ("cold_s", "warm_s", "cold_ms_per_step", "warm_ms_per_step", "cold_work_ms_per_step",
              "cold_parquet_ms_per_step", "cold_bookkeeping_ms_per_step", "cold_hits", "warm_hits"):
        out[k] = None

    if a.mode in ("both", "cold"):
        wall, hits, last = run_chain(tracker, csv, a.n, first_step)
        assert hits == 0 and STATS["calls"] == a.n, (hits, STATS)
        check_final(last, a.n, a.r)
        out.update(cold_s=wall, cold_ms_per_step=wall * 1e3 / a.n, cold_hits=hits,
                   cold_work_ms_per_step=STATS["work"] * 1e3 / a.n,
                   cold_parquet_ms_per_step=STATS["write"] * 1e3 / a.n,
                   cold_bookkeeping_ms_per_step=(wall - STATS["work"] - STATS["write"]) * 1e3 / a.n)
    if a.mode in ("both", "warm"):
        wall, hits, last = run_chain(tracker, csv, a.n, first_step)
        assert hits == a.n and STATS["calls"] == 0, (hits, STATS)
        check_final(last, a.n, a.r)
        out.update(warm_s=wall, warm_ms_per_step=wall * 1e3 / a.n, warm_hits=hits)

    out.update(first_step_ms=first_step[0], import_ms=IMPORT_MS)
    if a.dir is None:
        shutil.rmtree(d, ignore_errors=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
