"""Mutation testing of the three layers: which changes of the production code no test
notices.

    mise run mutate                                   # every mutant
    mise run mutate -- --files cli/bgagent/deadline.py
    mise run mutate -- --sample 0.1                   # a random tenth (seeded)
    mise run mutate -- --keep-killed                  # resume, or retry only survivors

cosmic-ray makes the mutants (its operators, its parser); this script runs them. The
working tree's tracked files are copied to a temporary directory, one copy per
worker, and only the copies are ever edited.

Each mutant is tried against the acceptance suite alone, then, if it survived, against
the layers' own tests (for the acceptance harness's own code, under ``features/`` or
``testkit/``: the harness's tests); "killed by all tests" means either killed it. A mutant is
killed when its tests fail (pytest's exit status 1) or run past their time limit; any
other ending (pytest's own errors, a signal) is recorded as an error, never a kill.

A run collects per-test line coverage first (one run of each suite; the CLI's
subprocesses are measured too, under the test that started them), so a mutant is
tried only against the tests that execute its line: a test that never runs a line
cannot notice its change. A line that also runs at import (a constant, a default, a
decorator) is tried against every test that runs code of its module or imports it by
name. Code the acceptance suite runs in a process of its own (the handler and the
definitions, under the local Lambda runtime) is tried against the whole suite. A
mutant on a line no test of a suite executes is counted as surviving that suite
without a run. Where this selection misses a test (a module reached only through
another module's import), the figures can only come out lower, never higher.

Survivors judged equivalent (no behaviour a user or maintainer could observe changes)
are listed, each with its changed line and its reason, in
``tools/mutation-equivalents.toml``; an entry whose changed line no longer matches is
reported as stale, not applied. The report leaves equivalents out of the figures and
lists every other survivor with its changed line. Mutants inside type annotations are
left out by rule, never run (with ``from __future__ import annotations`` they are
never evaluated), and so are mutants that are not valid Python.

``--keep-killed`` keeps a recorded kill while the mutated file is unchanged; it
assumes tests were only added or strengthened since (a deleted test's kills stay).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from testkit.temp_roots import claim_root, remove_roots_that_are_over

ROOT = Path(__file__).resolve().parent.parent
SCRATCH_PREFIX = "bgagent-mutate-"
EQUIVALENTS = ROOT / "tools" / "mutation-equivalents.toml"
RESULTS = ROOT / "build" / "mutation-results.jsonl"
PRODUCTION = [
    "agent/trace_agent",
    "cdk/trace_infra/definitions.py",
    "cdk/trace_infra/handlers/get_trace_url.py",
    "cli/bgagent",
]
# Code a suite (also) runs in a process of its own, the handler under the local Lambda
# runtime: per-test coverage cannot say which tests reach it there.
OWN_PROCESS = {
    "acceptance": {
        "cdk/trace_infra/handlers/get_trace_url.py",
        "cdk/trace_infra/definitions.py",
    },
    "unit": set(),
    "harness": set(),
}
# The code, found first in each copy (the editable install would find this tree's).
SOURCE_PATHS = ["agent", "cdk", "cli", "."]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
# Each suite: its options, and the tests it runs when not narrowed to some of them.
SUITES = {
    "acceptance": (["-m", "integration"], ["features/"]),
    # The layers' own tests, with the infrastructure's template tests: those pin the
    # definitions (a bucket's lifetime, an index) that no other test can see.
    "unit": ([], ["agent/tests", "cli/tests", "cdk/tests"]),
    # The harness's own tests: they pin the acceptance harness's code (the phrasebook,
    # the handler it runs, the report of what was judged) when that is what is mutated.
    "harness": ([], ["tests/harness"]),
}
HARNESS_CODE = ("features/", "testkit/")


def suites_for(file: str) -> list[str]:
    """The suites a mutant of ``file`` is tried against, in order."""
    return ["acceptance", "harness" if file.startswith(HARNESS_CODE) else "unit"]


Key = tuple[str, str, int]


@dataclass(frozen=True)
class Mutant:
    file: str
    operator: str
    occurrence: int
    first_line: int
    first_column: int
    last_line: int
    last_column: int

    @property
    def key(self) -> Key:
        return (self.file, self.operator, self.occurrence)

    @property
    def start(self) -> tuple[int, int]:
        return (self.first_line, self.first_column)

    @property
    def end(self) -> tuple[int, int]:
        return (self.last_line, self.last_column)


@dataclass
class Outcome:
    """What each suite did to one mutant: "killed", "survived" or "unreached"."""

    mutant: Mutant
    suites: dict[str, str] = field(default_factory=dict)
    change: str = ""
    digest: str = ""  # of the mutated file's source, to tell when a result is stale

    @property
    def killed(self) -> bool:
        return "killed" in self.suites.values()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/mutate.py", description=__doc__.split("\n")[0])
    parser.add_argument("--files", nargs="+", default=PRODUCTION, help="what to mutate")
    parser.add_argument("--sample", type=float, default=1.0, help="fraction of mutants to try")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants at once")
    parser.add_argument(
        "--keep-killed",
        action="store_true",
        help=f"keep the kills recorded in {RESULTS.relative_to(ROOT)} for files unchanged "
        "since; try every other mutant",
    )
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "mutation-report.md")
    parser.add_argument(
        "--plan", action="store_true", help="say how each mutant would run, and run none"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help=f"report what {RESULTS.relative_to(ROOT)} holds for the current code, run nothing",
    )
    args = parser.parse_args(argv)
    args.files = [_inside_the_project(name) for name in args.files]
    # A stop (Ctrl-C, a kill) unwinds: the test runs' process groups are killed and the
    # copies removed, and every outcome so far is already saved.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop)

    previous = _load_results()
    with _scratch_folder() as scratch:
        base = scratch / "tree-0"
        _copy_tracked_files(base)
        mutants, inert = _enumerate(base, args.files, scratch)
        mutants = [
            m for m in mutants if random.Random(f"{args.seed}{m.key}").random() < args.sample
        ]
        digests = {file: _digest(base / file) for file in {m.file for m in mutants}}
        wanted = {m.key for m in mutants}
        if args.report_only:
            current = {
                key: outcome
                for key, outcome in previous.items()
                if key in wanted and outcome.digest == digests.get(outcome.mutant.file)
            }
            return _write_report(args.report, current, inert, not_run=len(wanted) - len(current))
        kept = {
            key: outcome
            for key, outcome in previous.items()
            if args.keep_killed
            and key in wanted
            and outcome.killed
            and outcome.digest == digests.get(outcome.mutant.file)
        }
        others = {k: o for k, o in previous.items() if o.mutant.file not in digests}
        mutants = [m for m in mutants if m.key not in kept]
        print(
            f"mutate: {len(mutants)} mutants to run ({inert} left out by rule); "
            "measuring which tests run which line",
            file=sys.stderr,
        )
        needed = [s for s in SUITES if any(s in suites_for(file) for file in args.files)]
        coverage = {suite: _coverage(base, scratch, suite, args.files) for suite in needed}
        if args.plan:
            print(_plan(mutants, coverage))
            return 0
        copies = [base] + [_copy_tree(base, scratch / f"tree-{n}") for n in range(1, args.jobs)]
        outcomes = _run_all(mutants, coverage, copies, scratch, kept, digests, others)
    return _write_report(args.report, outcomes, inert, not_run=0)


def _write_report(path: Path, outcomes: dict[Key, Outcome], inert: int, *, not_run: int) -> int:
    report = _report(list(outcomes.values()), _equivalents(), inert, not_run=not_run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report, encoding="utf-8")
    print(report)
    print(f"Written to {path} (outcomes in {RESULTS})", file=sys.stderr)
    return 0


# --- the tree and its mutants -------------------------------------------------------


def _inside_the_project(name: str) -> str:
    """A path relative to the project, whatever the caller gave: cosmic-ray would
    otherwise mutate an absolute path where it is, in this tree, not in a copy."""
    path = Path(name) if Path(name).is_absolute() else Path.cwd() / name
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        sys.exit(f"mutate: {name} is not in the project ({ROOT})")


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
    # The harness's Node.js packages (npm ci), untracked: the Node bridge offers a
    # handler the runtime's SDK from them. Shared, never mutated.
    if (ROOT / "node_modules").is_dir():
        (destination / "node_modules").symlink_to(ROOT / "node_modules")


def _copy_tree(source: Path, destination: Path) -> Path:
    shutil.copytree(
        source, destination, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    return destination


def _enumerate(tree: Path, files: list[str], scratch: Path) -> tuple[list[Mutant], int]:
    """Every mutant cosmic-ray's operators make of these files, in a stable order, but
    those inside annotations; and how many those were."""
    from cosmic_ray.work_db import WorkDB, use_db

    config, session = scratch / "cosmic-ray.toml", scratch / "cosmic-ray.sqlite"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(files)}\n"
        "timeout = 1\nexcluded-modules = []\ntest-command = 'false'\n"
        '[cosmic-ray.distributor]\nname = "local"\n',
        encoding="utf-8",
    )
    subprocess.run(
        [sys.executable, "-m", "cosmic_ray.cli", "init", str(config), str(session)],
        cwd=tree,
        check=True,
    )
    mutants = []
    with use_db(str(session), WorkDB.Mode.open) as database:
        for item in database.pending_work_items:
            [spec] = item.mutations
            mutants.append(
                Mutant(
                    str(spec.module_path),
                    spec.operator_name,
                    int(spec.occurrence),
                    *spec.start_pos,
                    *spec.end_pos,
                )
            )
    inert = {file: _inert_spans(tree / file) for file in {m.file for m in mutants}}
    kept = [m for m in mutants if not _inside(m, inert[m.file])]
    kept.sort(key=lambda m: (m.file, m.first_line, m.operator, m.occurrence))
    return kept, len(mutants) - len(kept)


Span = tuple[tuple[int, int], tuple[int, int]]


def _inert_spans(path: Path) -> list[Span]:
    """Where a module's mutants cannot change behaviour: its annotations, when it never
    evaluates them."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lazy = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    found: list[ast.expr] = []
    for node in ast.walk(tree) if lazy else ():
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            found.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            found.append(node.returns)
    return [_span(n) for n in found]


def _span(node: ast.AST) -> Span:
    start = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
    return start, (node.end_lineno or start[0], node.end_col_offset or 0)  # type: ignore[attr-defined]


def _inside(mutant: Mutant, spans: list[Span]) -> bool:
    start, end = mutant.start, mutant.end
    return any(first <= start and end <= last for first, last in spans)


def _mutated_source(tree: Path, mutant: Mutant) -> tuple[str, str | None]:
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    original = (tree / mutant.file).read_text(encoding="utf-8")
    return original, mutate_code(original, get_operator(mutant.operator)(), mutant.occurrence)


# --- which tests run which line -----------------------------------------------------


@dataclass
class Coverage:
    """Per suite: the tests executing each line ("" for outside any test: at import)."""

    by_line: dict[tuple[str, int], set[str]]
    seconds: float
    # Per production file: the tests that run any of its code, or import it by name.
    users: dict[str, set[str]] = field(default_factory=dict)
    own_process: set[str] = field(default_factory=set)

    def tests_for(self, mutant: Mutant) -> list[str] | None:
        """The tests to run, None for the whole suite, [] when none reaches the mutant."""
        if mutant.file in self.own_process:
            return None
        lines = [(mutant.file, n) for n in range(mutant.first_line, mutant.last_line + 1)]
        contexts = set().union(*(self.by_line.get(line, set()) for line in lines))
        tests = contexts - {""}
        if "" in contexts:
            # Run at import (a constant, a default, a decorator): every test that uses
            # the module, through its code or its names, can tell.
            tests |= self.users.get(mutant.file, set())
        return sorted(tests)


def _coverage(tree: Path, scratch: Path, suite: str, files: list[str]) -> Coverage:
    data_file = scratch / f"coverage-{suite}"
    # Folders: coverage takes a file path for a module name and measures nothing.
    folders = {
        (tree / path).parent if path.endswith(".py") else tree / path
        for path in [*PRODUCTION, *files]
    }
    sources = [f"--cov={folder}" for folder in sorted(folders)]
    options, paths = SUITES[suite]
    hooks = _subprocess_coverage_hooks(scratch)
    command = [*PYTEST, "-p", "mutate_test_context", *sources, "--cov-context=test"]
    environment = _environment(tree, scratch / f"tmp-coverage-{suite}")
    env = {
        **environment,
        "PYTHONPATH": os.pathsep.join([str(hooks), environment["PYTHONPATH"]]),
        "COVERAGE_FILE": str(data_file),
        "MUTATE_COVERAGE_FILE": str(scratch / f"subprocess-coverage-{suite}"),
        "MUTATE_COVERAGE_SOURCE": os.pathsep.join(str(folder) for folder in sorted(folders)),
    }
    started = time.monotonic()
    finished = subprocess.run(
        [*command, "--cov-report=", *options, *paths],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if finished.returncode != 0:
        _check_failures_are_the_measurements(finished.stdout, tree, environment, suite)
    by_line: dict[tuple[str, int], set[str]] = defaultdict(set)
    for data_path in [data_file, *scratch.glob(f"subprocess-coverage-{suite}.*")]:
        for (file, line), contexts in _lines_of(data_path, tree).items():
            by_line[(file, line)].update(contexts)
    if not by_line:
        sys.exit(f"mutate: the {suite} tests measured none of the code in {tree}")
    collected = _collected(tree, environment, [*options, *paths])
    return Coverage(by_line, seconds, _users(tree, by_line, collected), OWN_PROCESS[suite])


def _check_failures_are_the_measurements(
    output: str, tree: Path, env: dict[str, str], suite: str
) -> None:
    """Tests that failed while measured must pass unmeasured, or the run stops: a suite
    that fails without any mutant would kill every mutant. (Measuring a subprocess can
    upset a test of it, one that floods it with signals.)"""
    failed = [
        line.removeprefix("FAILED ").split(" - ")[0]
        for line in output.splitlines()
        if line.startswith("FAILED ")
    ]
    again = (
        subprocess.run([*PYTEST, *failed], cwd=tree, env=env, capture_output=True, text=True)
        if failed
        else None
    )
    if again is None or again.returncode != 0:
        shown = (again.stdout if again is not None else output)[-3000:]
        sys.exit(f"mutate: the {suite} tests fail without any mutant:\n{shown}")
    print(f"mutate: {', '.join(failed)} failed only while measured; carrying on", file=sys.stderr)


def _lines_of(data_path: Path, tree: Path) -> dict[tuple[str, int], set[str]]:
    from coverage import CoverageData

    data = CoverageData(basename=str(data_path))
    data.read()
    lines: dict[tuple[str, int], set[str]] = defaultdict(set)
    for measured in data.measured_files():
        relative = Path(measured).relative_to(tree).as_posix()
        for line, contexts in data.contexts_by_lineno(measured).items():
            # pytest-cov names a context "<node id>|setup", "|run" or "|teardown"; a
            # subprocess's context is the node id of the test that started it.
            lines[(relative, line)].update(map(_test_of, contexts))
    return lines


def _test_of(context: str) -> str:
    test, _, phase = context.rpartition("|")
    return test if phase in ("setup", "run", "teardown") else context


# Per-test coverage of the Python subprocesses a test starts (the CLI run as users run
# it): the test's node id travels in the environment, and each subprocess measures
# itself under it. The Lambda runtime's process gets no such environment: the handler's
# file is in OWN_PROCESS instead.
_TEST_CONTEXT_PLUGIN = """
import os


def pytest_runtest_setup(item):
    os.environ["MUTATE_COVERAGE_CONTEXT"] = item.nodeid


def pytest_runtest_logfinish(nodeid, location):
    os.environ.pop("MUTATE_COVERAGE_CONTEXT", None)
"""
_SUBPROCESS_COVERAGE = """
import os
import resource

# Not under a file size limit (a test of short writes): saving the data would fail.
if (
    os.environ.get("MUTATE_COVERAGE_CONTEXT")
    and os.environ.get("MUTATE_COVERAGE_FILE")
    and resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY
):
    import atexit

    import coverage

    _coverage = coverage.Coverage(
        data_file=os.environ["MUTATE_COVERAGE_FILE"],
        data_suffix=True,
        source=os.environ["MUTATE_COVERAGE_SOURCE"].split(os.pathsep),
        context=os.environ["MUTATE_COVERAGE_CONTEXT"],
        config_file=False,
    )
    _coverage.start()

    @atexit.register
    def _save():
        _coverage.stop()
        _coverage.save()
"""


def _subprocess_coverage_hooks(scratch: Path) -> Path:
    hooks = scratch / "coverage-hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "mutate_test_context.py").write_text(_TEST_CONTEXT_PLUGIN, encoding="utf-8")
    (hooks / "sitecustomize.py").write_text(_SUBPROCESS_COVERAGE, encoding="utf-8")
    return hooks


def _collected(tree: Path, env: dict[str, str], arguments: list[str]) -> list[str]:
    """Every test of the suite, by node id (also those that run no production line)."""
    listed = subprocess.run(
        [*PYTEST, "--collect-only", *arguments], cwd=tree, env=env, capture_output=True, text=True
    )
    return [line for line in listed.stdout.splitlines() if "::" in line]


def _users(
    tree: Path, by_line: dict[tuple[str, int], set[str]], collected: list[str]
) -> dict[str, set[str]]:
    users: dict[str, set[str]] = defaultdict(set)
    tests_of: dict[str, set[str]] = defaultdict(set)  # test file -> its tests
    for test in collected:
        tests_of[test.partition("::")[0]].add(test)
    for (file, _), contexts in by_line.items():
        users[file].update(contexts - {""})
    sources = {name: (tree / name).read_text(encoding="utf-8") for name in tests_of}
    for file in list(users):
        module = ".".join(Path(file).with_suffix("").parts[1:])  # cli/bgagent/x.py: bgagent.x
        package, _, leaf = module.rpartition(".")
        imports = re.compile(
            rf"{re.escape(module)}\b|from {re.escape(package)} import .*\b{leaf}\b"
        )
        for test_file, tests in tests_of.items():
            if imports.search(sources[test_file]):
                users[file].update(tests)
    return users


# --- running the mutants ------------------------------------------------------------


def _environment(tree: Path, temporary: Path) -> dict[str, str]:
    temporary.mkdir(parents=True, exist_ok=True)
    # Nothing of the caller's pytest options, suite target or coverage set-up.
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_", "TRACE_SUITE_", "COVERAGE_"))
    }
    return {
        **inherited,
        "PYTHONPATH": os.pathsep.join(str(tree / path) for path in SOURCE_PATHS),
        # A mutant and the original can have the same size and mtime second: no .pyc.
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": str(temporary),
        # A mutant that ignores BGAGENT_CONFIG_DIR writes its settings here, not in ~.
        "HOME": str(temporary),
    }


def _run_all(
    mutants: list[Mutant],
    coverage: dict[str, Coverage],
    copies: list[Path],
    scratch: Path,
    kept: dict[Key, Outcome],
    digests: dict[str, str],
    others: dict[Key, Outcome],
) -> dict[Key, Outcome]:
    """Every outcome, saved (with those of other files) as each mutant is done, so that a
    stopped run can resume."""
    free: queue.Queue[Path] = queue.Queue()
    for copy in copies:
        free.put(copy)
    done = iter(range(1, len(mutants) + 1))
    lock = threading.Lock()
    outcomes = dict(kept)

    def one(mutant: Mutant) -> None:
        with _borrowed(free) as tree:
            try:
                outcome = _try(mutant, tree, coverage, scratch / f"tmp-{tree.name}")
            except Exception as failure:  # one mutant's trouble never ends the run
                outcome = Outcome(mutant, {"acceptance": f"error ({failure!r})"}, "?")
        outcome.digest = digests[mutant.file]
        if STOPPING.is_set():  # its test run was killed by the stop, not by the mutant
            return
        with lock:
            outcomes[mutant.key] = outcome
            _save_results({**others, **outcomes})
            verdict = ", ".join(f"{suite} {what}" for suite, what in outcome.suites.items())
            print(
                f"[{next(done)}/{len(mutants)}] {mutant.file}:{mutant.first_line} "
                f"{mutant.operator}#{mutant.occurrence}: {verdict}",
                file=sys.stderr,
            )

    pool = ThreadPoolExecutor(max_workers=len(copies))
    try:
        list(pool.map(one, mutants))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return outcomes


@contextmanager
def _borrowed(free: queue.Queue[Path]) -> Iterator[Path]:
    tree = free.get()
    try:
        yield tree
    finally:
        free.put(tree)


def _try(mutant: Mutant, tree: Path, coverage: dict[str, Coverage], temporary: Path) -> Outcome:
    outcome = Outcome(mutant)
    try:
        original, mutated = _mutated_source(tree, mutant)
    except Exception:  # cosmic-ray cannot make it (an exception named `module.Name`)
        outcome.suites = {suite: "invalid" for suite in suites_for(mutant.file)}
        return outcome
    if mutated is None:
        outcome.suites = {suite: "unreached" for suite in suites_for(mutant.file)}
        return outcome
    try:
        compile(mutated, mutant.file, "exec")
    except SyntaxError:  # no program: cosmic-ray also "multiplies" a signature's bare `*`
        outcome.suites = {suite: "invalid" for suite in suites_for(mutant.file)}
        return outcome
    outcome.change = _changed_lines(original, mutated)
    path = tree / mutant.file
    _write_fresh(path, mutated)
    try:
        for suite in suites_for(mutant.file):
            options, everything = SUITES[suite]
            if outcome.killed or STOPPING.is_set():
                break
            tests = coverage[suite].tests_for(mutant)
            if tests == []:
                outcome.suites[suite] = "unreached"
                continue
            command = [*PYTEST, "-x", *options, *(everything if tests is None else tests)]
            limit = 3 * coverage[suite].seconds + 30
            outcome.suites[suite] = _verdict(command, tree, _environment(tree, temporary), limit)
    finally:
        _write_fresh(path, original)
    return outcome


def _write_fresh(path: Path, text: str) -> None:
    """Write ``text`` with a modification time no earlier write of this file had: a
    process that keeps .pyc files (the handler's) must never take a stale one, which it
    would for a same-size source stamped in the same second."""
    previous = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    stamp = max(time.time_ns(), previous + 1_000_000_000)
    os.utime(path, ns=(stamp, stamp))


def _verdict(command: list[str], tree: Path, env: dict[str, str], limit: float) -> str:
    """ "survived" (the tests pass), "killed" (they fail, or hang past the limit), or
    "error (...)" for any other ending, which is no verdict on the mutant."""
    with RUNNING_LOCK:
        if STOPPING.is_set():
            return "error (stopped)"
        process = subprocess.Popen(
            command,
            cwd=tree,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its servers and Lambda process go with it
        )
        RUNNING.add(process)
    try:
        status = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        return "killed"
    finally:
        _kill_group(process)
        with RUNNING_LOCK:
            RUNNING.discard(process)
    return {0: "survived", 1: "killed"}.get(status, f"error (exit status {status})")


RUNNING: set[subprocess.Popen[bytes]] = set()
RUNNING_LOCK = threading.Lock()
STOPPING = threading.Event()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def _scratch_folder() -> Iterator[Path]:
    """The run's copies, in a folder it holds a lock on: a run killed outright (no
    signal to unwind on) leaves its folder, which the next run removes."""
    remove_roots_that_are_over(prefix=SCRATCH_PREFIX)
    root, lock = claim_root(prefix=SCRATCH_PREFIX)
    try:
        yield Path(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        lock.close()


def _stop(signum: int, _frame: object) -> None:
    if STOPPING.is_set():  # a second signal: the first one's cleanup is under way
        return
    STOPPING.set()
    with RUNNING_LOCK:
        running = list(RUNNING)
    for process in running:
        _kill_group(process)
    raise SystemExit(f"mutate: stopped by signal {signum}; outcomes so far are in {RESULTS}")


def _changed_lines(original: str, mutated: str) -> str:
    """The mutated lines, before → after."""
    diff = list(difflib.unified_diff(original.splitlines(), mutated.splitlines(), n=0))[2:]
    before = " ".join(
        line[1:].strip() for line in diff if line.startswith("-") and line[1:].strip()
    )
    after = " ".join(line[1:].strip() for line in diff if line.startswith("+") and line[1:].strip())
    return f"{before} → {after or '(removed)'}"


# --- results and the report ---------------------------------------------------------


def _save_results(outcomes: dict[Key, Outcome]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(outcomes.values(), key=lambda o: (o.mutant.file, o.mutant.first_line))
    partial = RESULTS.with_suffix(".part")
    partial.write_text("".join(json.dumps(asdict(o)) + "\n" for o in ordered), encoding="utf-8")
    partial.replace(RESULTS)


def _load_results() -> dict[Key, Outcome]:
    if not RESULTS.exists():
        return {}
    outcomes = {}
    for line in RESULTS.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        outcome = Outcome(Mutant(**data.pop("mutant")), **data)
        outcomes[outcome.mutant.key] = outcome
    return outcomes


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Equivalent:
    change: str  # the changed line, before → after: an entry for another mutant is stale
    reason: str


def _equivalents() -> dict[Key, Equivalent]:
    data = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))
    return {
        (entry["file"], entry["operator"], int(entry["occurrence"])): Equivalent(
            entry["change"], entry["reason"]
        )
        for entry in data.get("equivalent", [])
    }


def _plan(mutants: list[Mutant], coverage: dict[str, Coverage]) -> str:
    lines = [f"{len(mutants)} mutants"]
    for suite in coverage:
        plans = [coverage[suite].tests_for(m) for m in mutants if suite in suites_for(m.file)]
        narrowed = [len(p) for p in plans if p]
        lines.append(
            f"{suite} ({coverage[suite].seconds:.0f} s whole): {len(narrowed)} narrowed "
            f"(median {sorted(narrowed)[len(narrowed) // 2] if narrowed else 0} tests), "
            f"{plans.count(None)} whole suite, {plans.count([])} unreached"
        )
    return "\n".join(lines)


def _report(
    outcomes: list[Outcome], equivalents: dict[Key, Equivalent], inert: int, *, not_run: int = 0
) -> str:
    invalid = sum("invalid" in o.suites.values() for o in outcomes)
    valid = [o for o in outcomes if o.change]
    equivalent = [
        o
        for o in valid
        if o.mutant.key in equivalents
        and not o.killed
        and equivalents[o.mutant.key].change == o.change
    ]
    stale = [
        f"- `{key[0]}` {key[1]} (occurrence {key[2]}): listed as `{entry.change}`"
        for key, entry in sorted(equivalents.items())
        if any(o.mutant.key == key and o.change != entry.change for o in valid)
    ]
    no_verdict = [
        o for o in valid if not o.killed and any(v.startswith("error") for v in o.suites.values())
    ]
    counted = [o for o in valid if o not in equivalent and o not in no_verdict]
    by_file: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in counted:
        by_file[outcome.mutant.file].append(outcome)
    rows, survivors = [], []
    for file in sorted(by_file):
        rows.append(_row(file, by_file[file]))
        survivors += [
            f"- `{o.mutant.file}:{o.mutant.first_line}` {o.mutant.operator} "
            f"(occurrence {o.mutant.occurrence}): `{o.change}`"
            for o in sorted(by_file[file], key=lambda o: o.mutant.first_line)
            if not o.killed
        ]
    rows.append(_row("**all**", counted))
    total = len(counted)
    acceptance = sum(o.suites.get("acceptance") == "killed" for o in counted)
    either = sum(o.killed for o in counted)
    return "\n".join(
        [
            "# Mutation testing",
            "",
            f"{total} mutants (not counted: {len(equivalent)} listed as equivalent, "
            f"{inert} in annotations, {invalid} not made or not valid Python, "
            f"{len(no_verdict)} whose tests ended in an error, {not_run} not run yet). "
            f"Killed by the acceptance suite alone: {acceptance} ({_share(acceptance, total)}); "
            f"by all tests: {either} ({_share(either, total)}).",
            "",
            "| file | mutants | killed by the acceptance suite | killed by all tests |",
            "|---|---|---|---|",
            *rows,
            "",
            "## Survivors (no test noticed them)",
            "",
            *(survivors or ["None."]),
            "",
            "## No verdict (the tests ended in an error: run these again)",
            "",
            *(
                [
                    f"- `{o.mutant.file}:{o.mutant.first_line}` {o.mutant.operator} "
                    f"(occurrence {o.mutant.occurrence}): {o.suites}"
                    for o in no_verdict
                ]
                or ["None."]
            ),
            "",
            "## Stale equivalents (their changed line no longer matches: fix the entry)",
            "",
            *(stale or ["None."]),
            "",
        ]
    )


def _row(name: str, outcomes: list[Outcome]) -> str:
    total = len(outcomes)
    acceptance = sum(o.suites.get("acceptance") == "killed" for o in outcomes)
    either = sum(o.killed for o in outcomes)
    return (
        f"| {name} | {total} | {acceptance} ({_share(acceptance, total)}) "
        f"| {either} ({_share(either, total)}) |"
    )


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.0f}%" if total else "-"


if __name__ == "__main__":
    sys.exit(main())
