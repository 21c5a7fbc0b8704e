"""The acceptance suite, run again and again while other processes keep every core
busy: a scenario that depends on timing shows up here, not on a maintainer's machine.

    mise run soak                        # 20 runs under load
    mise run soak -- --runs 5 --load 0   # 5 runs, no load

Each run is bounded in time (a hang is a failure); the first failure stops the soak
and its output is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "integration"]
BUSY = [sys.executable, "-c", "while True: pass"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/soak.py", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 1, help="busy processes")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    args = parser.parse_args(argv)

    load = [subprocess.Popen(BUSY) for _ in range(args.load)]
    seconds: list[float] = []
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            try:
                done = subprocess.run(
                    [*SUITE, "features/"],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                print(f"soak: run {run} did not finish within {args.timeout:g} s", file=sys.stderr)
                return 1
            seconds.append(time.monotonic() - started)
            summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
            print(f"run {run}: {summary} ({seconds[-1]:.1f} s)", file=sys.stderr)
            if done.returncode != 0:
                print(done.stdout[-5000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
                return 1
    finally:
        for busy in load:
            busy.kill()
            busy.wait()
    print(
        f"soak: {args.runs} runs passed under {args.load} busy processes; wall time median "
        f"{statistics.median(seconds):.1f} s, slowest {max(seconds):.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
