"""One process that is only the agent: fill the accumulator to the cap, then time
dump + upload against `gzip -6` on the same JSONL, interleaved, and measure the
peak of Python allocations during dump + upload. Run by benchmarks/run.py, with
the environment of a running local stack; prints one JSON line."""

from __future__ import annotations

import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from trace_agent.trajectory import TrajectoryAccumulator
from trace_agent.upload import upload_trace_to_s3


def main(cap: int, runs: int, events_path: str) -> None:
    trajectory = TrajectoryAccumulator("bench-task", enabled=True, max_bytes=cap)
    with open(events_path, "rb") as events:
        for line in events:
            trajectory.record(json.loads(line))

    def dump_and_upload() -> None:
        body = trajectory.dump()
        assert body is not None
        assert upload_trace_to_s3("bench-task", "bench-user", body) is not None

    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "trace.jsonl"
        jsonl.write_bytes(gzip.decompress(trajectory.dump() or b""))  # what the dump compresses
        ours, gzip6 = [], []
        for _ in range(runs):
            start = time.perf_counter()
            dump_and_upload()
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run(f"gzip -6 -c {jsonl} > /dev/null", shell=True, check=True)
            gzip6.append(time.perf_counter() - start)
    tracemalloc.start()
    dump_and_upload()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "ours": statistics.median(ours),
                "gzip6": statistics.median(gzip6),
                "peak": peak,
                "accumulated": trajectory.accumulated_bytes,
                "dropped": trajectory.dropped,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
