"""The mutation-testing tool's own rules: which tests each mutant is tried against, which
mutants are left out, and how a run's outcomes are counted."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tools import mutate
from tools.mutate import Coverage, Equivalent, Mutant, Outcome


def mutant(file: str = "cli/x.py", line: int = 3, column: int = 4) -> Mutant:
    return Mutant(file, "core/NumberReplacer", 0, line, column, line, column + 1)


def test_a_line_run_by_tests_is_tried_against_those_tests_only() -> None:
    coverage = Coverage({("cli/x.py", 3): {"t::a", "t::b"}}, 1.0, {"cli/x.py": {"t::c"}})
    assert coverage.tests_for(mutant()) == ["t::a", "t::b"]


def test_a_line_also_run_at_import_adds_every_user_of_its_module() -> None:
    coverage = Coverage({("cli/x.py", 3): {"", "t::sub"}}, 1.0, {"cli/x.py": {"t::a", "t::b"}})
    assert coverage.tests_for(mutant()) == ["t::a", "t::b", "t::sub"]


def test_a_line_no_test_runs_is_unreached_and_a_file_of_its_own_process_runs_all() -> None:
    assert Coverage({}, 1.0).tests_for(mutant()) == []
    own = Coverage({("cli/x.py", 3): {"t::a"}}, 1.0, own_process={"cli/x.py"})
    assert own.tests_for(mutant()) is None  # the whole suite


def test_the_layers_are_pinned_by_their_tests_and_the_harness_by_its_own() -> None:
    for production in ("cli/bgagent/download.py", "agent/trace_agent/upload.py"):
        assert mutate.suites_for(production) == ["acceptance", "unit"]
    for harness in ("features/steps/tasks.py", "testkit/conformance/phrasebook.py"):
        assert mutate.suites_for(harness) == ["acceptance", "harness"]
    assert mutate.SUITES["harness"][1] == ["tests/harness"]


def test_a_module_is_used_by_the_tests_that_run_it_or_import_it(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("from bgagent import config\n")
    (tmp_path / "tests" / "test_b.py").write_text("import bgagent.configure\n")
    (tmp_path / "tests" / "test_c.py").write_text("import bgagent.config as c\n")
    by_line = {("cli/bgagent/config.py", 1): {"", "tests/test_b.py::ran"}}
    collected = ["tests/test_a.py::t", "tests/test_b.py::ran", "tests/test_c.py::t"]
    users = mutate._users(tmp_path, by_line, collected)
    assert users["cli/bgagent/config.py"] == {
        "tests/test_a.py::t",
        "tests/test_b.py::ran",
        "tests/test_c.py::t",
    }


def test_annotations_are_left_out_only_where_they_are_never_evaluated(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        from __future__ import annotations

        def f(a: int | None, *, b: int = 1 | 2) -> str | None:
            return None
        """
    )
    lazy = tmp_path / "lazy.py"
    lazy.write_text(source)
    eager = tmp_path / "eager.py"
    eager.write_text(source.replace("from __future__ import annotations", ""))
    spans = mutate._inert_spans(lazy)
    line = source.splitlines().index("def f(a: int | None, *, b: int = 1 | 2) -> str | None:") + 1
    text = source.splitlines()[line - 1]
    in_annotation = Mutant("m", "op", 0, line, text.index("|"), line, text.index("|") + 1)
    default = text.index("1 | 2") + 2
    in_default = Mutant("m", "op", 0, line, default, line, default + 1)
    assert mutate._inside(in_annotation, spans)
    assert not mutate._inside(in_default, spans)  # a default is evaluated
    assert mutate._inert_spans(eager) == []


def test_only_failing_tests_or_a_hang_kill_a_mutant(tmp_path: Path) -> None:
    def verdict(code: str, limit: float = 30) -> str:
        return mutate._verdict(["python3", "-c", code], tmp_path, {}, limit)

    assert verdict("raise SystemExit(0)") == "survived"
    assert verdict("raise SystemExit(1)") == "killed"
    assert verdict("import time; time.sleep(30)", limit=0.5) == "killed"
    assert verdict("raise SystemExit(5)") == "error (exit status 5)"  # no tests ran
    assert verdict("import os, signal; os.kill(os.getpid(), signal.SIGKILL)") == (
        "error (exit status -9)"
    )


def test_an_equivalent_applies_only_to_the_mutant_it_names() -> None:
    key = ("cli/x.py", "core/NumberReplacer", 0)
    survivor = Outcome(mutant(), {"acceptance": "survived", "unit": "survived"}, "a = 1 → a = 2")
    listed = {key: Equivalent("a = 1 → a = 2", "why")}
    report = mutate._report([survivor], listed, 0)
    assert "0 mutants (not counted: 1 listed as equivalent" in report
    stale = {key: Equivalent("a = 5 → a = 6", "why")}
    report = mutate._report([survivor], stale, 0)
    assert "1 mutants (not counted: 0 listed as equivalent" in report
    assert "listed as `a = 5 → a = 6`" in report
    not_run_yet = {("cli/y.py", "core/NumberReplacer", 0): Equivalent("b = 1 → b = 2", "why")}
    assert "None." in mutate._report([survivor], not_run_yet, 0).split("## Stale")[1]


def test_a_path_outside_the_project_is_refused() -> None:
    assert mutate._inside_the_project(str(mutate.ROOT / "cli/bgagent/main.py")) == (
        "cli/bgagent/main.py"
    )
    with pytest.raises(SystemExit, match="is not in the project"):
        mutate._inside_the_project("/etc/passwd")


def test_a_mutant_runs_with_a_home_and_a_temporary_folder_of_its_own(tmp_path: Path) -> None:
    environment = mutate._environment(tmp_path / "tree", tmp_path / "scratch")
    assert environment["HOME"] == environment["TMPDIR"] == str(tmp_path / "scratch")
    assert (tmp_path / "scratch").is_dir()
