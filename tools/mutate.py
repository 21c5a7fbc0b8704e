"""Mutation testing of the three layers with cosmic-ray: which changes of the production
code no test notices.

    mise run mutate                       # every mutant: hours on 2 cores
    mise run mutate -- --sample 0.1       # a random tenth (seeded), to see where things stand
    mise run mutate -- --files cli/bgagent/deadline.py

The working tree's tracked files are copied to a temporary directory, and
cosmic-ray mutates that copy (it edits files in place), never this tree. Each
mutant is tried twice: against the acceptance suite alone, then (if it
survived) against the layers' unit tests. A mutant is killed by "all tests" when
either kills it. Survivors judged equivalent (no behaviour a user or maintainer
could observe changes) are listed, each with its reason, in
``tools/mutation-equivalents.toml``; the report leaves them out of the figures and
lists every other survivor.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tools" / "mutation-equivalents.toml"
PRODUCTION = [
    "agent/trace_agent",
    "cdk/trace_infra/definitions.py",
    "cdk/trace_infra/handlers/get_trace_url.py",
    "cli/bgagent",
]
# The code, found first in the copy (the editable install would find this tree's).
SOURCE_PATHS = ["agent", "cdk", "cli", "features", "tests/support"]
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
SUITES = {
    "acceptance": [*PYTEST, "-m", "integration", "features/"],
    # The layers' unit tests, without those that synthesize the CDK app (seconds each):
    # the template tests pin the infrastructure, not the code mutated here.
    "unit": [
        *PYTEST,
        "agent/tests",
        "cli/tests",
        "cdk/tests/test_get_trace_url.py",
        "cdk/tests/test_get_trace_url_properties.py",
        "cdk/tests/test_definitions.py",
    ],
}


@dataclass(frozen=True)
class Mutant:
    file: str
    line: int
    operator: str
    occurrence: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.file, self.operator, self.occurrence)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/mutate.py", description=__doc__.split("\n")[0])
    parser.add_argument("--files", nargs="+", default=PRODUCTION, help="what to mutate")
    parser.add_argument("--sample", type=float, default=1.0, help="fraction of mutants to try")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per test run")
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "mutation-report.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bgagent-mutate-") as scratch:
        copy = Path(scratch) / "tree"
        _copy_tracked_files(copy)
        temporary = Path(scratch) / "tmp"  # pytest's own temp dirs, apart from any other run
        temporary.mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(copy / path) for path in SOURCE_PATHS),
            "TMPDIR": str(temporary),
        }
        outcomes: dict[str, dict[tuple[str, str, int], bool]] = {}
        mutants: dict[tuple[str, str, int], Mutant] = {}
        for suite, command in SUITES.items():
            only = None
            if suite == "unit":  # only what the acceptance suite let survive
                only = {key for key, killed in outcomes["acceptance"].items() if not killed}
            found = _run_session(copy, env, suite, command, args, only)
            outcomes[suite] = {key: killed for key, (_, killed) in found.items()}
            mutants.update({key: mutant for key, (mutant, _) in found.items()})
    report = _report(mutants, outcomes, _equivalents())
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report, encoding="utf-8")
    print(report)
    print(f"Written to {args.report}", file=sys.stderr)
    return 0


def _copy_tracked_files(destination: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _run_session(
    copy: Path,
    env: dict[str, str],
    suite: str,
    command: list[str],
    args: argparse.Namespace,
    only: set[tuple[str, str, int]] | None,
) -> dict[tuple[str, str, int], tuple[Mutant, bool]]:
    config = copy / f"cosmic-ray-{suite}.toml"
    session = copy / f"cosmic-ray-{suite}.sqlite"
    module_paths = ", ".join(json.dumps(path) for path in args.files)
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{module_paths}]\n"
        f"timeout = {args.timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(shlex.join(command))}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n',
        encoding="utf-8",
    )
    cosmic_ray = [sys.executable, "-m", "cosmic_ray.cli"]
    subprocess.run([*cosmic_ray, "init", str(config), str(session)], cwd=copy, env=env, check=True)
    _keep_only(session, args.sample, args.seed, only)
    print(f"mutate: running the {suite} tests against each mutant...", file=sys.stderr)
    subprocess.run([*cosmic_ray, "exec", str(config), str(session)], cwd=copy, env=env, check=True)
    dumped = subprocess.run(
        [*cosmic_ray, "dump", str(session)], cwd=copy, env=env, capture_output=True, check=True
    ).stdout.decode()
    found = {}
    for line in dumped.splitlines():
        item, result = json.loads(line)
        if result is None or result["worker_outcome"] == "skipped":
            continue
        [spec] = item["mutations"]
        mutant = Mutant(
            spec["module_path"], spec["start_pos"][0], spec["operator_name"], spec["occurrence"]
        )
        found[mutant.key] = (mutant, result["test_outcome"] != "survived")
    return found


def _keep_only(
    session: Path, fraction: float, seed: int, only: set[tuple[str, str, int]] | None
) -> None:
    """Mark as skipped the mutants that are not to be tried."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    chooser = random.Random(seed)
    with use_db(str(session), WorkDB.Mode.open) as database:
        items = sorted(database.pending_work_items, key=lambda item: item.job_id)
        items.sort(key=lambda item: _key_of(item.mutations[0]))
        for item in items:
            key = _key_of(item.mutations[0])
            sampled = chooser.random() < fraction
            if not sampled or (only is not None and key not in only):
                database.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))


def _key_of(spec: object) -> tuple[str, str, int]:
    return (str(spec.module_path), spec.operator_name, int(spec.occurrence))  # type: ignore[attr-defined]


def _equivalents() -> dict[tuple[str, str, int], str]:
    data = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))
    return {
        (entry["file"], entry["operator"], int(entry["occurrence"])): entry["reason"]
        for entry in data.get("equivalent", [])
    }


def _report(
    mutants: dict[tuple[str, str, int], Mutant],
    outcomes: dict[str, dict[tuple[str, str, int], bool]],
    equivalents: dict[tuple[str, str, int], str],
) -> str:
    by_file: dict[str, list[Mutant]] = defaultdict(list)
    for key, mutant in mutants.items():
        if key not in equivalents:
            by_file[mutant.file].append(mutant)
    rows, survivors = [], []
    totals = [0, 0, 0]
    for file in sorted(by_file):
        counted = by_file[file]
        acceptance = sum(outcomes["acceptance"].get(m.key, False) for m in counted)
        either = sum(
            outcomes["acceptance"].get(m.key, False) or outcomes["unit"].get(m.key, False)
            for m in counted
        )
        totals = [totals[0] + len(counted), totals[1] + acceptance, totals[2] + either]
        rows.append(f"| {file} | {len(counted)} | {acceptance} | {either} |")
        survivors += [
            f"- {m.file}:{m.line} {m.operator} (occurrence {m.occurrence})"
            for m in sorted(counted, key=lambda m: (m.line, m.operator, m.occurrence))
            if not (outcomes["acceptance"].get(m.key) or outcomes["unit"].get(m.key))
        ]
    total, acceptance, either = totals
    rows.append(f"| **all** | {total} | {acceptance} | {either} |")
    share = (lambda n: f"{100 * n / total:.0f}%") if total else (lambda n: "-")
    return "\n".join(
        [
            "# Mutation testing",
            "",
            f"{total} mutants tried ({len(equivalents)} listed as equivalent, not counted). "
            f"Killed by the acceptance suite alone: {acceptance} ({share(acceptance)}); "
            f"by all tests: {either} ({share(either)}).",
            "",
            "| file | mutants | killed by the acceptance suite | killed by all tests |",
            "|---|---|---|---|",
            *rows,
            "",
            "## Survivors (no test noticed them)",
            "",
            *(survivors or ["None."]),
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
