# The same cached step in Python Consist 0.3.5, for the ratio in README "What it costs".
# Run from an empty directory: pip install consist pytz && python3 python_reference.py
import time, consist
from consist import ExecutionOptions, Tracker
tracker = Tracker(run_dir="./runs", db_path="./provenance.duckdb")
def process_data(value: int) -> dict:
    return {"squared": value ** 2}
times = []
with consist.use_tracker(tracker):
    for i in range(21):
        t = time.perf_counter()
        r = consist.run(fn=process_data, name="square", config={"value": 5},
                        execution_options=ExecutionOptions(runtime_kwargs={"value": 5}))
        times.append(time.perf_counter() - t)
        assert (i == 0) != bool(r.run.meta.get("cache_hit")), i
hits = sorted(times[1:])
print(f"python consist 0.3.5: miss {times[0]*1e3:.1f} ms, hit median {hits[len(hits)//2]*1e3:.1f} ms (n={len(hits)})")
