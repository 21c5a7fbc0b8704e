"""Benchmarks of the trace round trip, measured side by side in one run.

    .venv/bin/python -m benchmarks.run [--quick] [--write docs/benchmarks.md]
    .venv/bin/python -m benchmarks.run --against REV [--write docs/benchmarks.md]

1. The acceptance suite: its wall time and its floor (collection only), and the
   cost of each further scenario (an outline of 10 round trips against 100).
2. bgagent trace download of a trace at the 50 MiB cap, against
   `curl -s URL | gunzip` on the same presigned URL, to stdout and with -o; the
   CLI's peak RSS for a 5 MiB and a 50 MiB trace.
3. The agent's dump + upload at the cap against `gzip -6` on the same JSONL, and
   its peak memory at the cap for 10-byte and 100 KB events.

With ``--against REV``: only the suite's figures (the whole suite, one scenario, the
cost per extra scenario), for this tree and for the tree at REV (``git archive``,
its own code on the path) run in turn, and their ratios.

Each pytest run has Python's bytecode cache on (in a temporary folder of the
benchmark's own, whatever PYTHONDONTWRITEBYTECODE says), warmed by a first run, as
a developer's repeated runs have it.

Medians of interleaved runs: this machine is shared and noisy. Not part of the
tests; nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import requests

from benchmarks.words import WORDS
from bgagent.api import ApiClient
from bgagent.config import Config, load_config, load_credentials, save_config
from bgagent.main import run as bgagent_run
from testkit.aws.endpoint import REGION
from testkit.stack.local import LocalStack
from testkit.stack.users import User
from trace_agent.trajectory import MAX_TRACE_BYTES

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MiB = 1024 * 1024
# Where the measured runs keep their bytecode; a folder of the run's own (``main``).
_PYCACHE = Path(tempfile.gettempdir()) / "bgagent-bench-pycache-unset"
LAYERS = ("agent", "cli", "cdk")  # the folders of the installed packages
# One ordinary round trip, for the cost of a run of a single scenario.
ONE_SCENARIO = (
    "features/test_trace_download.py::"
    "test_a_traced_task_uploads_is_presigned_for_its_owner_and_downloads_intact"
)
Row = tuple[str, str, str]  # measure, figure, target


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


# --- 1. the acceptance suite -------------------------------------------------------------


def _pytest(args: list[str], tree: Path = ROOT) -> tuple[float, int]:
    """Wall time of one pytest run from the root of ``tree`` (this project's, or
    another commit's, whose production code then comes first on the path), and how
    many tests it ran (or collected, with --collect-only)."""
    env = dict(os.environ)
    if tree != ROOT:  # the editable install would otherwise import this tree's layers
        env["PYTHONPATH"] = os.pathsep.join(str(tree / layer) for layer in LAYERS)
    # As a developer runs it again and again: Python's bytecode cache on, in a folder of
    # the benchmark's own, whatever the shell says.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE)
    start = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    found = re.search(r"(\d+)(?:/\d+)? (?:passed|tests collected)", done.stdout)
    if done.returncode != 0 or not found:
        raise SystemExit(
            f"pytest {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
        )
    return wall, int(found.group(1))


_GROWTH_FEATURE = """@integration
Feature: Many traced tasks
  Background:
    Given Alice and Bob have accounts on the platform

  Scenario Outline: A traced task round trip
    Given Alice ran a task with trace on, which finished after <turns> turns of agent work
    When Alice downloads the task's trace
    Then every event of the task follows in the order it happened

    Examples:
      | turns |
{rows}
"""


def _growth_suite(directory: Path, scenarios: int, tree: Path = ROOT) -> Path:
    """An outline of ``scenarios`` round trips inside the tree's features/, so that it
    runs with that tree's own configuration, conftests and steps."""
    directory.mkdir()
    rows = "\n".join(f"      | {3 + i % 5} |" for i in range(scenarios))
    (directory / "many.feature").write_text(_GROWTH_FEATURE.format(rows=rows))
    feature = (directory / "many.feature").relative_to(tree / "features")
    (directory / f"test_many_{scenarios}.py").write_text(
        f'from pytest_bdd import scenarios\n\nscenarios("{feature}")\n'
    )
    return directory


def bench_suite(runs: int) -> list[Row]:
    suite = ["-m", "integration", "features/"]
    walls, floors, count = [], [], 0
    _pytest(suite)  # warms the bytecode cache
    for _ in range(runs):  # interleaved
        wall, count = _pytest(suite)
        walls.append(wall)
        floors.append(_pytest([*suite, "--collect-only"])[0])
    sizes = (10, 100)
    walls_by_size: dict[int, list[float]] = {n: [] for n in sizes}
    with _growth_suites(ROOT, sizes) as suites:
        for _ in range(runs):
            for n, directory in suites.items():
                walls_by_size[n].append(
                    _pytest(["-m", "integration", str(directory.relative_to(ROOT))])[0]
                )
    m = {n: statistics.median(w) for n, w in walls_by_size.items()}
    per_scenario = (m[100] - m[10]) / 90
    suite_wall, floor = statistics.median(walls), statistics.median(floors)
    return [
        (
            f"acceptance suite, wall ({count} scenarios, median of {runs})",
            f"{suite_wall:.2f} s",
            "≤ 2.5 s",
        ),
        (
            "  its floor: pytest collecting the suite and exiting",
            f"{floor:.2f} s; the scenarios and their stack {suite_wall - floor:.2f} s",
            "",
        ),
        ("outline of 10 traced round trips, wall", f"{m[10]:.2f} s", ""),
        ("outline of 100 traced round trips, wall", f"{m[100]:.2f} s", ""),
        ("  per additional scenario (slope 10 → 100)", f"{per_scenario * 1000:.0f} ms", "≤ 25 ms"),
    ]


@contextmanager
def _growth_suites(tree: Path, sizes: tuple[int, ...]) -> Iterator[dict[int, Path]]:
    for stale in (tree / "features").glob(".bench-growth-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    growth = Path(tempfile.mkdtemp(prefix=".bench-growth-", dir=tree / "features"))
    try:
        yield {n: _growth_suite(growth / f"s{n}", n, tree) for n in sizes}
    finally:
        shutil.rmtree(growth)


@contextmanager
def _tree_at(revision: str) -> Iterator[Path]:
    """The project's tracked files at ``revision``, in a temporary folder of their own."""
    with tempfile.TemporaryDirectory(prefix="bgagent-bench-") as folder:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", revision],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise SystemExit(f"git archive {revision}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        yield Path(folder)


def bench_against(revision: str, runs: int) -> list[tuple[str, str, str, str, str]]:
    """The suite, one scenario, and the slope per scenario, for the tree at
    ``revision`` and for this one, run in turn in every round."""
    sizes = (10, 100)
    walls: dict[tuple[str, str], list[float]] = {}
    counts: dict[str, int] = {}
    with _tree_at(revision) as before, ExitStack() as growing:
        trees = {"before": before, "now": ROOT}
        growth = {
            name: growing.enter_context(_growth_suites(t, sizes)) for name, t in trees.items()
        }
        for round_ in range(runs + 1):  # the first round warms the bytecode cache
            for name, tree in trees.items():
                measured = {
                    "suite": ["-m", "integration", "features/"],
                    "one": ["-m", "integration", ONE_SCENARIO],
                    **{
                        f"outline {n}": ["-m", "integration", str(d.relative_to(tree))]
                        for n, d in growth[name].items()
                    },
                }
                for what, args in measured.items():
                    wall, count = _pytest(args, tree)
                    if round_:
                        walls.setdefault((name, what), []).append(wall)
                    if what == "suite":
                        counts[name] = count
    median = {key: statistics.median(values) for key, values in walls.items()}

    def slope(name: str) -> float:
        return (median[name, "outline 100"] - median[name, "outline 10"]) / 90

    figures = {
        "suite": (median["before", "suite"], median["now", "suite"]),
        "one": (median["before", "one"], median["now", "one"]),
        "slope": (slope("before"), slope("now")),
    }
    labels = {
        "suite": (
            f"acceptance suite, wall ({counts['before']} → {counts['now']} scenarios)",
            "≤ 0.6x",
        ),
        "one": ("one scenario run alone, wall", "≤ 0.6x"),
        "slope": ("cost per additional scenario (outline 10 → 100)", "≤ 0.75x"),
    }
    rows = []
    for key, (then, now) in figures.items():
        label, target = labels[key]
        unit, scale = ("ms", 1000) if key == "slope" else ("s", 1)
        rows.append(
            (
                label,
                f"{then * scale:.{0 if scale > 1 else 2}f} {unit}",
                f"{now * scale:.{0 if scale > 1 else 2}f} {unit}",
                f"{now / then:.2f}x",
                target,
            )
        )
    return rows


# --- 2 and 3: traces at the cap ----------------------------------------------------------


def agent_events(total_bytes: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Turns of plausible text, about 2 KiB each, until ``total_bytes`` of JSON."""
    rng = random.Random(seed)
    produced, turn = 0, 0
    while produced < total_bytes:
        turn += 1
        text = " ".join(rng.choices(WORDS, k=300)) + f" {rng.getrandbits(64):x}"
        event = {"event": "TRAJECTORY_TURN", "turn": turn, "role": "assistant", "text": text}
        produced += len(text) + 60
        yield event


def _bgagent(
    config_dir: Path, *args: str, measure_rss: bool = False, check: bool = True
) -> subprocess.CompletedProcess:
    """The installed bgagent as Alice, output discarded; under GNU time for its peak RSS."""
    command = [str(BIN / "bgagent"), *args]
    if measure_rss:
        command = ["/usr/bin/time", "-f", "%M", *command]
    return subprocess.run(
        command,
        env={**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=check,
    )


def _peak_rss_kib(config_dir: Path, task_id: str) -> int:
    done = _bgagent(config_dir, "trace", "download", task_id, measure_rss=True)
    return int(done.stderr.strip().splitlines()[-1])


def _signed_in(running: LocalStack, workdir: Path) -> tuple[Path, User]:
    """Alice, signed in through bgagent with a configuration of her own."""
    user = running.add_user("alice", "Alice-Bench-Pass-1")
    config_dir = workdir / "alice"
    pool = running.resources.pool
    save_config(config_dir, Config(running.resources.api_url, REGION, pool.id, pool.client_id))
    os.environ.update(running.cli_environment())  # boto3 reads its endpoint from here
    code = bgagent_run(
        ["login", "--username", "alice", "--password-stdin"],
        stdin=io.StringIO("Alice-Bench-Pass-1\n"),
        stderr=io.StringIO(),
        environ={**os.environ, **running.cli_environment(), "BGAGENT_CONFIG_DIR": str(config_dir)},
    )
    assert code == 0
    return config_dir, user


def _link(config_dir: Path, task_id: str) -> str:
    with requests.Session() as session:
        client = ApiClient(load_config(config_dir), load_credentials(config_dir), session)
        return client.get_trace_link(task_id).url


def bench_download(runs: int, cap: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp, LocalStack.running() as running:
        workdir = Path(tmp)
        config_dir, user = _signed_in(running, workdir)
        # The pipeline keeps 50 MiB at most: --quick asks for less than that.
        large, small = "bench-large", "bench-small"
        running.resources.run_task(large, user.sub, agent_events(cap + MiB), trace=True)
        running.resources.run_task(small, user.sub, agent_events(cap // 10), trace=True)
        small_jsonl = len(gzip.decompress(running.resources.stored_artifact(small)))
        stored = running.resources.stored_artifact(large)
        jsonl_bytes = len(gzip.decompress(stored))

        def curl_stdout() -> None:
            url = _link(config_dir, large)
            subprocess.run(
                f"curl -s {shlex.quote(url)} | gunzip > /dev/null", shell=True, check=True
            )

        def cli_stdout() -> None:
            _bgagent(config_dir, "trace", "download", large)

        def curl_file() -> None:
            url = _link(config_dir, large)
            target = workdir / "curl.gz"
            subprocess.run(["curl", "-s", "-o", str(target), url], check=True)
            target.unlink()

        def cli_file() -> None:
            target = workdir / "cli.gz"
            _bgagent(config_dir, "trace", "download", large, "-o", str(target))
            target.unlink()

        times: dict[str, list[float]] = {k: [] for k in ("curl", "cli", "curl_o", "cli_o")}
        for _ in range(runs):  # interleaved, so that noise hits both sides alike
            times["curl"].append(timed(curl_stdout))
            times["cli"].append(timed(cli_stdout))
            times["curl_o"].append(timed(curl_file))
            times["cli_o"].append(timed(cli_file))
        med = {k: statistics.median(v) for k, v in times.items()}
        rss_small = statistics.median(_peak_rss_kib(config_dir, small) for _ in range(3))
        rss_large = statistics.median(_peak_rss_kib(config_dir, large) for _ in range(3))
        # The fixed cost of any bgagent run: interpreter, imports, the API call.
        # No download: the API answers TASK_NOT_FOUND.
        api_only = statistics.median(
            timed(lambda: _bgagent(config_dir, "trace", "download", "no-such-task", check=False))
            for _ in range(runs)
        )
    return [
        (
            f"the trace downloaded: {jsonl_bytes / MiB:.1f} MiB JSONL, "
            f"{len(stored) / MiB:.1f} MiB gzip",
            "",
            "",
        ),
        ("curl -s URL \\| gunzip > /dev/null", f"{med['curl']:.2f} s", ""),
        (
            "bgagent trace download > /dev/null",
            f"{med['cli']:.2f} s = {med['curl'] / med['cli']:.2f}x curl's throughput",
            "≥ 0.8x",
        ),
        ("curl -s -o FILE URL", f"{med['curl_o']:.2f} s", ""),
        (
            "bgagent trace download -o FILE",
            f"{med['cli_o']:.2f} s = {med['curl_o'] / med['cli_o']:.2f}x curl's throughput",
            "≥ 0.8x",
        ),
        (
            "  of which bgagent's fixed cost (start-up + API call, no download)",
            f"{api_only:.2f} s",
            "",
        ),
        (
            f"bgagent peak RSS, {small_jsonl / MiB:.1f} MiB vs {jsonl_bytes / MiB:.1f} MiB trace",
            f"{rss_small / 1024:.1f} MiB vs {rss_large / 1024:.1f} MiB "
            f"(+{(rss_large - rss_small) / 1024:.1f} MiB)",
            "flat, within 30 MB",
        ),
    ]


def _probe(running: LocalStack, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.agent_probe", *args],
        cwd=ROOT,
        env={**os.environ, **running.resources.agent.environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench_agent(runs: int, cap: int) -> list[Row]:
    """In processes of their own: the servers of the local stack stay out of the figures."""
    with tempfile.TemporaryDirectory() as tmp, LocalStack.running() as running:
        events = Path(tmp) / "events.jsonl"
        with events.open("w") as handle:
            for event in agent_events(cap + MiB):
                handle.write(json.dumps(event) + "\n")
        probe = _probe(running, "speed", str(cap), str(runs), str(events))
        memory = {size: _probe(running, "memory", str(cap), str(size)) for size in (10, 100_000)}
    rows = [
        (
            f"agent: accumulator at its cap ({probe['accumulated'] / MiB:.1f} MiB, "
            f"{probe['dropped']} events dropped)",
            "",
            "",
        ),
        ("gzip -6 -c trace.jsonl > /dev/null", f"{probe['gzip6']:.2f} s", ""),
        (
            "dump + upload_trace_to_s3",
            f"{probe['ours']:.2f} s = {probe['ours'] / probe['gzip6']:.2f}x gzip -6",
            "≤ 1.5x",
        ),
        (
            "  peak of Python allocations during dump + upload",
            f"{probe['peak'] / MiB:.1f} MiB = {probe['peak'] / probe['accumulated']:.2f}x "
            "the accumulator",
            "",
        ),
    ]
    for size, figures in memory.items():
        label = f"{size} B" if size < 1000 else f"{size // 1000} KB"
        rows.append(
            (
                f"agent's peak memory, {label} events filled to the cap, dumped, uploaded "
                f"({figures['events']:,} events)",
                f"{figures['peak_above_start'] / MiB:.1f} MiB = "
                f"{figures['peak_above_start'] / cap:.2f}x the cap",
                "≤ 1.25x",
            )
        )
    return rows


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    return (
        f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, {platform.system()}"
    )


def table(rows: list[Row]) -> str:
    lines = ["| measure | figure | target |", "|---|---|---|"]
    lines += [f"| {m} | {f} | {t} |" for m, f, t in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, a 5 MiB cap")
    parser.add_argument("--write", type=Path, help="also write the table to this Markdown file")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="only the suite's figures, side by side with the commit REV, and their ratios",
    )
    args = parser.parse_args(argv)
    global _PYCACHE
    with tempfile.TemporaryDirectory(prefix="bgagent-bench-pycache-") as pycache:
        _PYCACHE = Path(pycache)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.against:
        return _compare(args.against, 2 if args.quick else 5, args.write)
    for tool in ("curl", "gzip", "gunzip"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed for the side-by-side figures")
    runs = 2 if args.quick else 5
    cap = 5 * MiB if args.quick else MAX_TRACE_BYTES
    rows = bench_suite(runs) + bench_download(runs, cap) + bench_agent(runs, cap)
    report = (
        f"Measured on {machine()}, with "
        f"`mise run bench`{' (--quick)' if args.quick else ''}.\n\n" + table(rows)
    )
    print(report)
    if args.write:
        args.write.write_text(_DOC.format(report=report))
    return 0


def _compare(revision: str, runs: int, write: Path | None) -> int:
    named = subprocess.run(
        ["git", "log", "-1", "--format=%h %s", revision], cwd=ROOT, capture_output=True, text=True
    )
    rows = bench_against(revision, runs)
    lines = [
        f"| measure | at {revision} | now | now / before | target |",
        "|---|---|---|---|---|",
        *[f"| {' | '.join(row)} |" for row in rows],
    ]
    report = (
        f"Measured on {machine()}, with `mise run bench:against {revision}`: "
        f"medians of {runs} rounds, each running both trees in turn. Before: "
        f"{named.stdout.strip() or revision}; now: this tree.\n\n" + "\n".join(lines)
    )
    print(report)
    if write:
        write.write_text(_COMPARISON.format(report=report))
    return 0


_COMPARISON = """# The suite against an earlier commit

{report}

- **The suite**: `pytest -m integration features/`, wall time, in each tree,
  with Python's bytecode cache on (warmed by a first round that is not counted).
- **One scenario**: `pytest -m integration {one}`: the fixed costs
  (Python, pytest, collection, the stack's start, the sign-ins) and one round trip.
- **The cost per additional scenario**: an outline of 10 and one of 100 traced
  round trips written into each tree's features/; (wall(100) - wall(10)) / 90.
""".replace("{one}", ONE_SCENARIO)


_DOC = """# Benchmarks

Run on demand, not by the tests: `mise run bench`, or
`.venv/bin/python -m benchmarks.run --write docs/benchmarks.md`
(`--quick`: two rounds and a 5 MiB cap). Figures are medians of interleaved runs,
measured side by side in one run on a shared, noisy machine; nothing here
reaches beyond 127.0.0.1.

{report}

## What each figure is

- **The acceptance suite**: `pytest -m integration features/`, wall time; its
  floor is the same command with `--collect-only` (Python, pytest, the suite's
  imports, collection).
- **The slope**: an outline of 10 and one of 100 traced round trips (a task
  submitted, the agent's run uploaded and linked, `bgagent trace download`,
  every event checked), written into `features/` for the run so that they run
  with the project's own configuration; (wall(100) - wall(10)) / 90.
- **The download**: `bgagent` as users run it (a process of its own) against
  `curl` on the same presigned URL, on a trace at the agent's 50 MiB cap.
- **The agent's memory**: a process that is only the agent fills the
  accumulator past the cap with events of 10 bytes or 100 KB of JSON
  (agent-like text, which compresses as a real trace does), dumps and uploads
  it to the local stack; the figure is its peak resident memory (`VmHWM`)
  above what it held before the first event, against the cap.

## Where the suite's time goes

- **It is CPU-bound.** A run's CPU time (all its processes) about equals its
  wall time, so parallel runs (pytest-xdist) do not pay on 2 cores: each
  worker also starts a stack of its own (`-n 2` measured slower than one
  process, 5.7 to 7.1 s against 5.2 to 5.4 s, with 9 s of CPU against 5.7).
- **The fixed part** (the floor, then the stack): the test process starting
  (Python, pytest, the suite's modules). moto's server, with the gates, is
  launched as the project's conftest registers, on ports bound beforehand, so
  the function's cold start (and its warm-up request) runs beside moto's; the
  stack opens in a thread while pytest collects. moto's own start (its imports,
  its backends, about 0.6 s of CPU) is what the first scenario can still wait
  for; the user pools' key is built from its known prime. Then two users sign
  in through `bgagent login`, and pytest exits (the last garbage collection
  skipped by a freeze).
- **Each scenario** is a chain of real HTTP calls, one after the other: about
  seven reach moto's process (the agent's and the handler's through the S3 or
  DynamoDB gate, which call moto's app in that process: one hop, on a
  connection kept alive), a download crosses the local API Gateway into the
  function's process and back. Measured on the outline of round trips, a
  scenario costs about 20 ms of CPU in the test process (the steps, the CLI and
  the agent run in-process, botocore's client side, the API Gateway), and the
  rest in moto's process (its Flask dispatch more than the gates' checks) and
  the function's. pytest-bdd looks each step up among all registered fixtures
  (about 3 ms a scenario).
- **Waiting**: only the three scenarios about a deadline wait for one (0.1 s);
  this project's CLI run in-process does not pause between retries.
- **Side by side with an earlier commit**: `docs/inner-loop.md`
  (`mise run bench:against REV`).
- **bgagent's fixed cost** is the interpreter and its imports (requests,
  urllib3) plus one API call. boto3 is imported only when the CLI talks to
  Cognito, and tqdm only once a progress bar is due. With `-o` the download
  itself (total minus fixed) runs at about curl's speed; the rest is
  start-up, which curl does not pay. The file is fsync'ed before it is moved
  into place.
- **The CLI's memory** stays flat: the body is streamed in 256 KiB chunks and
  inflated at most 1 MiB at a time.
- **The agent** keeps its trace as the JSON Lines it will compress, in blocks
  of about a MiB: memory follows the JSON bytes plus a newline per event,
  whatever the number of events. The pipeline's dump (zlib at level 6, as
  `gzip -6`) lets each block go once compressed, so the trace and its artifact
  are never both whole in memory; the upload then holds the artifact (boto3
  sends it from memory).
"""


if __name__ == "__main__":
    sys.exit(main())
