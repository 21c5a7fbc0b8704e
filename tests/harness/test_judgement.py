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
    nodeid: str,
    when: str,
    outcome: str = "passed",
    difference: Difference | None = None,
    *,
    contract: bool = True,
    layers: tuple[str, ...] = ("cli",),
    skip_reason: str = "Skipped: needs the suite's own stack",
) -> Any:
    named = {"name": f"F: {nodeid}", "contract": contract, "layers": list(layers)}
    properties = [("trace_suite_difference", asdict(difference))] if difference else []
    return SimpleNamespace(
        nodeid=nodeid,
        when=when,
        skipped=outcome == "skipped",
        failed=outcome == "failed",
        longrepr=("f.feature", 1, skip_reason) if outcome == "skipped" else "it broke",
        keywords=SCENARIO,
        # Properties of other plugins, before and after this one's in name order.
        user_properties=[
            ("another", {"x": 1}),
            ("trace_suite_scenario", named),
            ("zzz", {"x": 1}),
            *properties,
        ],
    )


def run(
    judgement: Judgement,
    nodeid: str,
    *phases: tuple[str, str, Difference | None],
    **named: Any,
) -> None:
    for when, outcome, difference in phases:
        judgement.pytest_runtest_logreport(report(nodeid, when, outcome, difference, **named))


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
    assert judged["scenarios"] == {"ran": 5, "passed": 1, "deselected": 0}
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
    assert judgement.as_json()["failed"] == [{**asdict(FORBIDDEN), "contract": True}]


def test_tests_that_are_no_scenarios_are_not_counted() -> None:
    judgement = Judgement({})
    unit = report("u", "setup")
    unit.keywords = {"test_unit": 1}
    judgement.pytest_runtest_logreport(unit)
    assert judgement.as_json()["scenarios"] == {"ran": 0, "passed": 0, "deselected": 0}


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
        "The round trip's contract: does not conform (2 of 3 scenarios failed, 0 not applicable)",
        "This project's extras: 0 of 0 passed, 0 not applicable",
        "layer       contract passed  failed  extras passed  failed  not applicable",
        "agent                     0       0              0       0               0",
        "handler                   0       0              0       0               0",
        "cli                       1       2              0       0               0",
        "✗ contract · Downloading the trace of a task: Another user is refused and "
        "receives nothing",
        "    Then the download fails, telling him he does not have access to the task",
        "    wording: the wording of ... differs",
        "✗ contract · F: S [row | one]",
        "    Then it says",
        "    no phrasebook entry: …",
        "The phrasebook has no entry for 1 message(s) the scenarios check:",
        '    "Gone"',
    ]


def test_the_verdict_tells_the_contract_from_the_extras_and_the_not_applicable() -> None:
    judgement = Judgement({})
    ok = (("setup", "passed", None), ("call", "passed", None))
    run(judgement, "a", *ok, layers=("agent", "cli"))
    run(judgement, "b", ("setup", "passed", None), ("call", "failed", BROKEN), contract=False)
    run(judgement, "c", *ok, contract=False, layers=("handler",))
    na = "Skipped: not applicable: the CLI has no setting for it"
    run(judgement, "d", ("setup", "skipped", None), skip_reason=na)
    run(judgement, "e", ("setup", "skipped", None), contract=False, skip_reason=na)
    run(judgement, "f", ("setup", "skipped", None))  # the target lacks what it needs
    run(judgement, "g", ("setup", "passed", None), ("call", "skipped", None), skip_reason=na)
    judged = judgement.as_json()
    assert judged["verdict"] == "conforms to the contract"
    assert judged["contract"] == counts(passed=1, not_applicable=2)
    assert judged["extras"] == counts(passed=1, failed=1, not_applicable=1)
    assert judged["layers"]["agent"]["contract"] == counts(passed=1)
    assert judged["layers"]["handler"]["extras"] == counts(passed=1)
    assert judged["layers"]["cli"]["extras"] == counts(failed=1, not_applicable=1)
    assert judged["not_applicable"] == [
        {"scenario": f"F: {name}", "reason": "the CLI has no setting for it"}
        for name in ("d", "e", "g")
    ]
    assert [d["contract"] for d in judged["failed"]] == [False]
    terminal = Terminal()
    judgement.pytest_terminal_summary(terminal)  # type: ignore[arg-type]
    assert "The round trip's contract: conforms (1 of 1 scenarios passed, 2 not applicable)" in (
        terminal.lines
    )
    assert "This project's extras: 1 of 2 passed, 1 not applicable" in terminal.lines
    assert "Not run on this target: 1 (needs the suite's own stack)" in terminal.lines
    assert "✗ extra · F: T" in terminal.lines
    assert "    F: d: the CLI has no setting for it" in terminal.lines


def counts(**given: int) -> dict[str, int]:
    outcomes = ("passed", "failed", "not_applicable", "set_up_failed", "not_finished")
    return {outcome: given.get(outcome, 0) for outcome in outcomes}


def test_a_run_that_passed_nothing_of_the_contract_is_not_judged() -> None:
    judgement = Judgement({})
    na = "Skipped: not applicable: no sign-in"
    run(judgement, "a", ("setup", "skipped", None), skip_reason=na)
    run(judgement, "b", ("setup", "passed", None), ("call", "passed", None), contract=False)
    assert judgement.as_json()["verdict"] == "not judged: no scenario of the contract ran"
    terminal = Terminal()
    judgement.pytest_terminal_summary(terminal)  # type: ignore[arg-type]
    assert (
        "The round trip's contract: not judged: no scenario of the contract ran (1 not applicable)"
    ) in terminal.lines


def test_a_scenario_that_never_finished_or_crashed_its_worker_never_passes() -> None:
    """A run stopped mid-scenario sends its set-up but no call; a crashed parallel worker's
    report carries none of the scenario's properties, nor even its keywords."""
    judgement = Judgement({})
    run(judgement, "a", ("setup", "passed", None), ("call", "passed", None))
    run(judgement, "stopped", ("setup", "passed", None))
    run(judgement, "crashed", ("setup", "passed", None))
    crash = SimpleNamespace(
        nodeid="crashed",
        when="???",
        skipped=False,
        failed=True,
        longrepr="worker 'gw0' crashed while running 'crashed'",
        keywords={},
        user_properties=[],
    )
    judgement.pytest_runtest_logreport(crash)  # type: ignore[arg-type]
    judged = judgement.as_json()
    assert judged["verdict"] == "does not conform"
    assert judged["contract"] == counts(passed=1, failed=1, not_finished=1)
    assert judged["not_finished"] == ["F: stopped"]
    [crashed] = judged["failed"]
    assert (crashed["scenario"], crashed["step"]) == ("F: crashed", "while it ran")
    assert crashed["detail"] == "worker 'gw0' crashed while running 'crashed'"
    terminal = Terminal()
    judgement.pytest_terminal_summary(terminal)  # type: ignore[arg-type]
    assert "Not finished (1):" in terminal.lines
    assert "    F: stopped" in terminal.lines


def test_a_scenario_that_could_not_be_set_up_counts_for_no_layer() -> None:
    judgement = Judgement({})
    setup = Difference("F", "S", "", "Given Alice ran a task", "behaviour", "no", in_setup=True)
    run(judgement, "a", ("setup", "passed", None), ("call", "failed", setup), layers=("agent",))
    judged = judgement.as_json()
    assert judged["verdict"] == "does not conform"
    assert judged["contract"] == counts(set_up_failed=1)
    assert judged["layers"]["agent"]["contract"] == counts(set_up_failed=1)
    terminal = Terminal()
    judgement.pytest_terminal_summary(terminal)  # type: ignore[arg-type]
    assert "agent                     0       0              0       0               0" in (
        terminal.lines
    )
    assert "✗ contract, in set-up · F: S" in terminal.lines


def test_a_partial_selection_is_said() -> None:
    judgement = Judgement({})
    scenario = SimpleNamespace(get_closest_marker=lambda name: name == "integration" or None)
    unit = SimpleNamespace(get_closest_marker=lambda name: None)
    judgement.pytest_deselected([scenario, scenario, unit])  # type: ignore[list-item]
    run(judgement, "a", ("setup", "passed", None), ("call", "passed", None))
    terminal = Terminal()
    judgement.pytest_terminal_summary(terminal)  # type: ignore[arg-type]
    assert (
        "The round trip's contract: conforms (1 of 1 scenarios passed, 0 not applicable; "
        "2 scenarios deselected)"
    ) in terminal.lines


def test_failures_alike_in_set_up_are_told_once_and_others_with_what_the_layers_said() -> None:
    judgement = Judgement({})
    setup = Difference(
        "F", "S", "", "before its steps", "behaviour", "the CLI's sign-in failed", in_setup=True
    )
    given = Difference("F", "S", "", "And Alice ran a task", "behaviour", "boom", in_setup=True)
    said = Difference("F", "U", "", "Then x", "behaviour", "differs", said=["IAM: no ListBucket"])
    for name in ("a", "b", "c"):
        run(judgement, name, ("setup", "failed", setup))
    run(judgement, "d", ("setup", "passed", None), ("call", "failed", given))
    run(judgement, "e", ("setup", "passed", None), ("call", "failed", said))
    terminal = Terminal()
    judgement.pytest_terminal_summary(terminal)  # type: ignore[arg-type]
    failures = terminal.lines[terminal.lines.index("✗ 3 scenarios failed alike, in set-up:") :]
    assert failures == [
        "✗ 3 scenarios failed alike, in set-up:",
        "    before its steps",
        "    behaviour: the CLI's sign-in failed",
        "✗ contract, in set-up · F: S",
        "    And Alice ran a task",
        "    behaviour: boom",
        "✗ contract · F: U",
        "    Then x",
        "    behaviour: differs",
        "    IAM: no ListBucket",
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
        "agent": "this project's pipeline (trace_agent.pipeline.run_task)",
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
        iter_markers=lambda: [SimpleNamespace(name=n) for n in ("integration", "extra", "cli")],
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
    [named, (name, difference)] = report.user_properties
    assert named == (
        "trace_suite_scenario",
        {
            "name": "trace_download.feature: A traced task downloads",
            "contract": False,
            "layers": ["cli"],
        },
    )
    assert name == "trace_suite_difference"
    assert difference == asdict(
        Difference(
            feature="trace_download.feature",
            scenario="A traced task downloads",
            example="",
            step=where,
            kind="behaviour",
            detail="boom",
            in_setup=when == "setup",
        )
    )


def test_a_failed_step_is_reported_as_the_step_said_and_a_pass_carries_nothing() -> None:
    item = scenario_item()
    item.stash[conformance._STEP_FAILED] = FORBIDDEN
    assert made_report(item, "call").user_properties[1:] == [
        ("trace_suite_difference", asdict(FORBIDDEN))
    ]
    assert [n for n, _ in made_report(item, "call", failed=False).user_properties] == [
        "trace_suite_scenario"
    ]
    witnessed = scenario_item()
    witnessed.stash[conformance._STEP_FAILED] = Difference("F", "S", "", "Then x", "behaviour", "")
    witnessed.stash[conformance.WITNESSES] = lambda: ["the CLI said: no\nmore", "IAM: " + "x" * 500]
    said = made_report(witnessed, "call").user_properties[1][1]["said"]
    assert said == ["the CLI said: no", "IAM: " + "x" * 394 + "…"]
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
