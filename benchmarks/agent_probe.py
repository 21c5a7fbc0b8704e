"""One process that is only the agent, run by benchmarks/run.py with the environment
of a running local stack; prints one JSON line.

    python -m benchmarks.agent_probe speed CAP RUNS EVENTS_FILE
        fill the accumulator to the cap, then time dump + upload against `gzip -6`
        on the same JSONL, interleaved, and measure the peak of Python allocations
        during dump + upload.
    python -m benchmarks.agent_probe memory CAP EVENT_BYTES
        fill the accumulator past the cap with events of EVENT_BYTES of JSON each,
        dump and upload: the process's peak resident memory above what it held
        before the first event, against the cap.
"""

from __future__ import annotations

import gzip
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks.words import WORDS
from trace_agent.trajectory import TrajectoryAccumulator
from trace_agent.upload import upload_trace_to_s3


def speed(cap: int, runs: int, events_path: str) -> None:
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


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/self/status")


def memory(cap: int, event_bytes: int) -> None:
    # Text as an agent's (the words benchmarks/run.py uses), so that the artifact held
    # for the upload compresses as a real one does: each event a window at another
    # place of a long stream of words. {"t":""} is 8 bytes of JSON.
    width = max(event_bytes - 8, 0)
    words = " ".join(random.Random(7).choices(WORDS, k=300_000))
    places = len(words) - width

    def event_at(index: int) -> dict[str, str]:
        start = index * 7919 % places
        return {"t": words[start : start + width]}

    trajectory = TrajectoryAccumulator("bench-task", enabled=True, max_bytes=cap)
    upload_trace_to_s3("bench-task", "bench-user", b"warm")  # clients and imports made
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    before = _status_kib("VmRSS")
    index = 0
    while not trajectory.dropped:
        trajectory.record(event_at(index))
        index += 1
    body = trajectory.dump(consume=True)  # as the pipeline dumps
    assert body is not None
    assert upload_trace_to_s3("bench-task", "bench-user", body) is not None
    peak = _status_kib("VmHWM")
    print(
        json.dumps(
            {
                "event_bytes": len(json.dumps(event_at(0), separators=(",", ":"))),
                "events": trajectory.accumulated_events,
                "accumulated": trajectory.accumulated_bytes,
                "peak_above_start": (peak - before) * 1024,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "speed":
        speed(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        memory(int(sys.argv[2]), int(sys.argv[3]))
