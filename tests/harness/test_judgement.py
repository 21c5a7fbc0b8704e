"""How a run's judgement counts scenarios and tells what differed, from the reports the
scenarios send (in-process, or from parallel workers)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from testkit.conformance import judgement as conformance
from testkit.conformance.judgement import Difference, Judgement, first_line
from testkit.conformance.phrasebook import DEFAULT_PHRASEBOOK
from testkit.settings import ENV_PHRASEBOOK, Settings
from tests.harness.suite_runs import STACK_NOT_CREATED_HERE

SCENARIO = {"integration": 1}
FORBIDDEN = Difference(
    feature="Downloading the trace of a task",
    scenario="Another user is refused and receives nothing",
    example="",
    step="Then the download fails, telling him he does not have access to the task",
    kind="wording",
    detail="the wording of ... differs",
)
MISSING = Difference("F", "S", "row | one", "Then it says", "no phrasebook entry", "…", "Gone")
BROKEN = Difference("F", "T", "", "after its steps", "behaviour", "exit status 70, not 1")


def report(
    nodeid: str, when: str, outcome: str = "passed", difference: Difference | None = None
) -> Any:
    properties = [("trace_suite_difference", asdict(difference))] if difference else []
    return SimpleNamespace(
        nodeid=nodeid,
        when=when,
        skipped=outcome == "skipped",
        keywords=SCENARIO,
        # Properties of other plugins, before and after this one's in name order.
        user_properties=[("another", {"x": 1}), ("zzz", {"x": 1}), *properties],
    )


def run(judgement: Judgement, nodeid: str, *phases: tuple[str, str, Difference | None]) -> None:
    for when, outcome, difference in phases:
        judgement.pytest_runtest_logreport(report(nodeid, when, outcome, difference))


def test_scenarios_are_counted_once_set_up_and_failures_from_any_phase() -> None:
    judgement = Judgement({"CLI": "theirs"})
    ok = (("setup", "passed", None), ("call", "passed", None), ("teardown", "passed", None))
    run(judgement, "a", *ok)
    run(judgement, "b", ("setup", "passed", None), ("call", "failed", FORBIDDEN), *ok[2:])
    run(judgement, "c", ("setup", "failed", MISSING), ("teardown", "passed", None))
    run(judgement, "d", *ok[:2], ("teardown", "failed", FORBIDDEN))
    run(judgement, "e", ("setup", "skipped", None), ("teardown", "passed", None))
    run(judgement, "f", ("setup", "passed", None), ("call", "skipped", None), *ok[2:])  # xfail
    run(judgement, "g", ("setup", "skipped", None), ("teardown", "failed", BROKEN))
    judged = judgement.as_json()
    assert judged["scenarios"] == {"ran": 5, "passed": 1}
    assert [d["step"] for d in judged["failed"]] == [
        FORBIDDEN.step,
        MISSING.step,
        FORBIDDEN.step,
        BROKEN.step,
    ]
    assert judged["missing_from_phrasebook"] == ["Gone"]
    assert judged["implementations"] == {"CLI": "theirs"}


def test_a_scenario_failing_twice_keeps_its_first_difference() -> None:
    judgement = Judgement({})
    run(judgement, "b", ("setup", "passed", None), ("call", "failed", FORBIDDEN))
    run(judgement, "b", ("teardown", "failed", MISSING))
    assert judgement.as_json()["failed"] == [asdict(FORBIDDEN)]


def test_tests_that_are_no_scenarios_are_not_counted() -> None:
    judgement = Judgement({})
    unit = report("u", "setup")
    unit.keywords = {"test_unit": 1}
    judgement.pytest_runtest_logreport(unit)
    assert judgement.as_json()["scenarios"] == {"ran": 0, "passed": 0}


class Terminal:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, title: str) -> None:
        self.lines.append(f"== {title} ==")

    def write_line(self, line: str, **markup: bool) -> None:
        self.lines.append(line)


def test_the_summary_names_what_was_judged_and_each_difference() -> None:
    judgement = Judgement({"CLI": "theirs", "handler": "ours"})
    run(judgement, "a", ("setup", "passed", None), ("call", "passed", None))
    run(judgement, "b", ("setup", "passed", None), ("call", "failed", FORBIDDEN))
    run(judgement, "c", ("setup", "passed", None), ("call", "failed", MISSING))
    terminal = Terminal()
    judgement.pytest_terminal_summary(terminal)  # type: ignore[arg-type]
    assert terminal.lines == [
        "== what the acceptance suite judged ==",
        "CLI: theirs",
        "handler: ours",
        "3 scenarios ran: 1 passed, 2 failed",
        "✗ Downloading the trace of a task: Another user is refused and receives nothing",
        "    Then the download fails, telling him he does not have access to the task",
        "    wording: the wording of ... differs",
        "✗ F: S [row | one]",
        "    Then it says",
        "    no phrasebook entry: …",
        "The phrasebook has no entry for 1 message(s) the scenarios check:",
        '    "Gone"',
    ]


def test_a_run_without_scenarios_says_nothing() -> None:
    terminal = Terminal()
    Judgement({"CLI": "theirs"}).pytest_terminal_summary(terminal)  # type: ignore[arg-type]
    assert terminal.lines == []


def test_the_implementations_are_named_from_the_environment() -> None:
    mine = conformance.implementations(Settings())
    assert mine["CLI"] == "this project's bgagent, in-process (bgagent.main.run)"
    assert mine["handler"].startswith("this project's handler, trace_infra.handlers.")
    assert mine["phrasebook"].endswith("features/phrasebook.toml (this project's wording)")
    theirs = conformance.implementations(
        Settings.read(
            {
                "TRACE_SUITE_CLI": "node 'their cli/bgagent.js'",
                "TRACE_SUITE_PHRASEBOOK": "/zzz/theirs.toml",
                "TRACE_SUITE_HANDLER": "trace_infra.handlers.get_trace_url.lambda_handler",
            }
        )
    )
    assert theirs == {
        "CLI": "node 'their cli/bgagent.js', as a process of its own",
        "handler": "trace_infra.handlers.get_trace_url.lambda_handler "
        "(Python, under the runtime interface client)",
        "phrasebook": "/zzz/theirs.toml",
    }
    named = conformance.implementations(Settings(phrasebook=DEFAULT_PHRASEBOOK))
    assert named["phrasebook"] == f"{DEFAULT_PHRASEBOOK} (this project's wording)"
    deployed = conformance.implementations(Settings.read(STACK_NOT_CREATED_HERE))
    assert deployed["handler"] == "the deployed API's, at https://api.invalid/prod"


def test_the_json_report_goes_where_asked_even_into_new_folders(tmp_path: Path) -> None:
    judgement = Judgement({"CLI": "theirs"})
    run(judgement, "b", ("setup", "passed", None), ("call", "failed", FORBIDDEN))
    written = tmp_path / "new" / "folder" / "conformance.json"
    config = SimpleNamespace(getoption=lambda name, default=None: str(written))
    judgement.pytest_sessionfinish(SimpleNamespace(config=config))  # type: ignore[arg-type]
    assert json.loads(written.read_text()) == judgement.as_json()
    worker = SimpleNamespace(config=SimpleNamespace(getoption=config.getoption, workerinput={}))
    written.unlink()
    judgement.pytest_sessionfinish(worker)  # type: ignore[arg-type]
    assert not written.exists()  # a parallel worker's own judgement is partial


def test_the_phrasebook_is_the_one_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SimpleNamespace(stash=pytest.Stash())
    assert conformance.phrasebook_of(config).path == DEFAULT_PHRASEBOOK  # type: ignore[arg-type]
    # A default that sorts before theirs: a path is told by equality, not by order.
    default = tmp_path / "a-default.toml"
    default.write_bytes(DEFAULT_PHRASEBOOK.read_bytes())
    monkeypatch.setattr(conformance, "DEFAULT_PHRASEBOOK", default)
    theirs = tmp_path / "zzz-theirs.toml"
    theirs.write_text('[messages]\n"where the trace was written" = "Saved {file}"\n')
    monkeypatch.setenv(ENV_PHRASEBOOK, str(theirs))
    config = SimpleNamespace(stash=pytest.Stash())
    book = conformance.phrasebook_of(config)  # type: ignore[arg-type]
    assert book.path == theirs
    assert conformance.phrasebook_of(config) is book  # loaded once
    # Keys name the messages the default phrasebook says they name.
    assert book.names["where the trace was written"] == "Wrote {file}"
    monkeypatch.setenv(ENV_PHRASEBOOK, str(tmp_path / "absent.toml"))
    with pytest.raises(pytest.UsageError, match=r"absent\.toml"):
        conformance.phrasebook_of(SimpleNamespace(stash=pytest.Stash()))  # type: ignore[arg-type]


def test_a_detail_is_its_first_line_and_at_most_400_characters() -> None:
    assert first_line("  said this\nassert 1 == 2\n") == "said this"
    assert first_line("") == "(no message)"
    assert first_line("x" * 400) == "x" * 400
    assert first_line("x" * 401) == "x" * 399 + "…"


def made_report(item: Any, when: str, *, failed: bool = True, crash: str = "") -> Any:
    """A report through the suite's report wrapper, as pytest makes one for ``item``."""
    report = SimpleNamespace(
        failed=failed,
        when=when,
        longrepr=SimpleNamespace(reprcrash=SimpleNamespace(message=crash)),
        user_properties=[],
    )
    wrapper = conformance.pytest_runtest_makereport(item, None)  # type: ignore[arg-type]
    next(wrapper)
    try:
        wrapper.send(report)
    except StopIteration as done:
        return done.value
    raise AssertionError("the wrapper gave no report back")


def scenario_item(**stashed: Any) -> Any:
    def test() -> None:
        """/x/features/trace_download.feature: A traced task downloads"""

    item = SimpleNamespace(
        obj=test,
        name="test_a_traced_task_downloads",
        stash=pytest.Stash(),
        get_closest_marker=lambda name: name == "integration" or None,
    )
    for key, value in stashed.items():
        item.stash[key] = value
    return item


@pytest.mark.parametrize(
    ("when", "where"),
    [("setup", "before its steps"), ("call", "in its steps"), ("teardown", "after its steps")],
)
def test_a_failure_outside_any_step_says_where_and_what(when: str, where: str) -> None:
    report = made_report(scenario_item(), when, crash="AssertionError: boom\nassert 1 == 2")
    [(name, difference)] = report.user_properties
    assert name == "trace_suite_difference"
    assert difference == asdict(
        Difference(
            feature="trace_download.feature",
            scenario="A traced task downloads",
            example="",
            step=where,
            kind="behaviour",
            detail="boom",
        )
    )


def test_a_failed_step_is_reported_as_the_step_said_and_a_pass_carries_nothing() -> None:
    item = scenario_item()
    item.stash[conformance._STEP_FAILED] = FORBIDDEN
    assert made_report(item, "call").user_properties == [
        ("trace_suite_difference", asdict(FORBIDDEN))
    ]
    assert made_report(item, "call", failed=False).user_properties == []
    other = scenario_item()
    other.get_closest_marker = lambda name: None  # a test that is no scenario
    assert made_report(other, "call").user_properties == []


def test_unusable_settings_stop_only_a_run_that_says_it_holds_scenarios(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACE_SUITE_CLI", "/")
    registered: list[Any] = []
    config = SimpleNamespace(
        option=SimpleNamespace(markexpr="not integration"),
        stash=pytest.Stash(),
        pluginmanager=SimpleNamespace(register=lambda plugin, name: registered.append(plugin)),
    )
    conformance.begin(config)  # type: ignore[arg-type]
    [judging] = registered
    assert judging.implementations == {
        "settings": "unusable: TRACE_SUITE_CLI='/': '/' is no command that can run here"
    }
    config.option.markexpr = "integration"
    with pytest.raises(pytest.UsageError, match="'/' is no command that can run here"):
        conformance.begin(config)  # type: ignore[arg-type]
