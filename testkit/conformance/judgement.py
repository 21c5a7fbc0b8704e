"""What the suite judged, and where each failed scenario differed.

The scenarios judge a CLI, a handler, an agent and the wording of a phrasebook
together. Each scenario (or Examples block) judges the round trip's contract, which
any implementation must meet, unless it is tagged ``@extra``: this project's behaviour
beyond it. Its layer tags (``@agent``, ``@handler``, ``@cli``) say which layers' behaviour
it judges. A scenario that needs what the implementation does not offer is not
applicable (``testkit.settings.not_applicable``): never failed, never passed.

At the end of a run that held scenarios, the terminal summary gives the verdict
("conforms to the contract" or not, and the extras apart), a table by layer, and each
failed scenario with the step that failed, what differed there (a behaviour, the
wording of a message, a message the phrasebook has no entry for) and what the layers
said: the CLI's last line, the handler's error log, the storage's refusals. Failures
alike before any step ran are told once. ``--conformance-report=PATH`` writes the same
as JSON, which the living documentation renders.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testkit.conformance.phrasebook import (
    DEFAULT_PHRASEBOOK,
    Misjudged,
    MissingPhrase,
    Phrasebook,
    PhrasebookError,
)
from testkit.settings import NOT_APPLICABLE as NOT_APPLICABLE_PREFIX
from testkit.settings import Settings, SettingsError
from testkit.stack.launch import selects_scenarios
from testkit.stack.session import handler_code

_DETAIL_CHARACTERS = 400


EXTRA = "extra"  # the tag of a scenario that judges this project's behaviour beyond the contract
LAYERS = {"agent": "the agent", "handler": "the trace API's handler", "cli": "the CLI"}
TAGS = {
    EXTRA: "judges this project's behaviour beyond the round trip's contract",
    **{tag: f"judges {layer}" for tag, layer in LAYERS.items()},
}


@dataclass
class Difference:
    """A failed scenario: where it failed, and what differed there."""

    feature: str
    scenario: str
    example: str
    step: str
    kind: str  # "behaviour", "wording" or "no phrasebook entry"
    detail: str
    message: str = ""  # for a missing entry: the message the phrasebook lacks
    said: list[str] = field(default_factory=list)  # what the layers said, "who: what"
    in_setup: bool = False  # before its steps, or in a Given step: it judged nothing yet


# How a scenario came out. One set up but never ended (a crash, a stopped run) is not
# finished; one whose set-up failed judged nothing, and no layer is counted for it.
PASSED, FAILED, SETUP_FAILED, UNFINISHED = "passed", "failed", "set-up failed", "not finished"
NOT_APPLICABLE, NOT_RUN = "not applicable", "not run here"
_COUNTED = (PASSED, FAILED, NOT_APPLICABLE, SETUP_FAILED, UNFINISHED)


@dataclass
class Scenario:
    """One scenario (or Examples row) and how it came out."""

    name: str  # "<feature file>: <scenario> [<example>]"
    contract: bool
    layers: list[str]
    outcome: str = UNFINISHED  # until its steps have passed, or it failed or was skipped
    reason: str = ""  # why it was not applicable or not run


class Judgement:
    """What one run judged, and how its failed scenarios differed: kept by the process
    that reports (under xdist, the controller), from the reports the scenarios sent."""

    def __init__(self, implementations: dict[str, str]) -> None:
        self.implementations = implementations
        self.scenarios: dict[str, Scenario] = {}  # by test id
        self.differences: dict[str, Difference] = {}  # by test id
        self.deselected = 0  # scenarios left out of the run (-k, -m, --lf), where known

    @property
    def ran(self) -> set[str]:
        return {i for i, s in self.scenarios.items() if s.outcome in (PASSED, FAILED)}

    @property
    def missing(self) -> list[str]:
        return sorted({d.message for d in self.differences.values() if d.kind == NO_ENTRY})

    def _count(self, contract: bool, layer: str | None = None) -> dict[str, int]:
        chosen = [
            s
            for s in self.scenarios.values()
            if s.contract is contract and (layer is None or layer in s.layers)
        ]
        return {
            outcome.replace(" ", "_").replace("-", "_"): sum(s.outcome == outcome for s in chosen)
            for outcome in _COUNTED
        }

    @property
    def verdict(self) -> str:
        counts = self._count(contract=True)
        if counts["failed"] or counts["set_up_failed"] or counts["not_finished"]:
            return "does not conform"
        if not counts["passed"]:
            return "not judged: no scenario of the contract ran"
        return "conforms to the contract"

    def as_json(self) -> dict[str, Any]:
        return {
            "implementations": self.implementations,
            "verdict": self.verdict,
            "contract": self._count(contract=True),
            "extras": self._count(contract=False),
            "layers": {
                layer: {"contract": self._count(True, layer), "extras": self._count(False, layer)}
                for layer in LAYERS
            },
            "scenarios": {
                "ran": len(self.ran),
                "passed": len(self.ran - set(self.differences)),
                "deselected": self.deselected,
            },
            "failed": [
                {**asdict(d), "contract": self.scenarios[i].contract}
                for i, d in self.differences.items()
                if i in self.scenarios
            ],
            "not_applicable": [
                {"scenario": s.name, "reason": s.reason}
                for s in self.scenarios.values()
                if s.outcome == NOT_APPLICABLE
            ],
            "not_finished": [s.name for s in self.scenarios.values() if s.outcome == UNFINISHED],
            "missing_from_phrasebook": self.missing,
        }

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += sum(item.get_closest_marker("integration") is not None for item in items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A scenario passed once its steps did; one skipped judged nothing: not
        applicable when the implementation lacks what it needs, not run when the target
        does. A failure counts whenever it came, also one reported for a crashed worker
        (which carries none of the scenario's own properties)."""
        known = self.scenarios.get(report.nodeid)
        if known is None and "integration" not in report.keywords:
            return
        properties = dict(report.user_properties)
        named = properties.get(_SCENARIO)
        scenario = known or self.scenarios.setdefault(
            report.nodeid,
            Scenario(**named) if isinstance(named, dict) else Scenario(report.nodeid, True, []),
        )
        if report.failed:
            if report.nodeid not in self.differences:
                difference = properties.get(_PROPERTY)
                self.differences[report.nodeid] = (
                    Difference(**difference)
                    if isinstance(difference, dict)
                    else Difference(
                        feature="",
                        scenario=scenario.name,
                        example="",
                        step=_PHASES.get(report.when, "while it ran"),
                        kind="behaviour",
                        detail=first_line(str(report.longrepr)),
                        in_setup=report.when == "setup",
                    )
                )
            in_setup = self.differences[report.nodeid].in_setup
            scenario.outcome = SETUP_FAILED if in_setup else FAILED
        elif scenario.outcome in (FAILED, SETUP_FAILED):
            return
        elif report.skipped:
            reason = _skip_reason(report)
            applicable = not reason.startswith(NOT_APPLICABLE_PREFIX)
            scenario.outcome = NOT_RUN if applicable else NOT_APPLICABLE
            scenario.reason = reason if applicable else reason.removeprefix(NOT_APPLICABLE_PREFIX)
        elif report.when == "call" and scenario.outcome == UNFINISHED:
            scenario.outcome = PASSED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.scenarios:
            return
        write = terminalreporter.write_line
        terminalreporter.section("what the acceptance suite judged")
        for part, name in self.implementations.items():
            write(f"{part}: {name}")
        judged = self.as_json()
        counts, failed = judged["scenarios"], len(self.differences)
        write(f"{counts['ran']} scenarios ran: {counts['passed']} passed, {failed} failed")
        for line, colour in _verdict_lines(self.verdict, judged, self.deselected):
            write(line, **colour)
        elsewhere = [s for s in self.scenarios.values() if s.outcome == NOT_RUN]
        if elsewhere:
            write(f"Not run on this target: {len(elsewhere)} ({elsewhere[0].reason})")
        for line in _table(judged["layers"]):
            write(line)
        for line in _failures(list(self.differences.items()), self.scenarios):
            write(line, red=line.startswith("✗"))
        if judged["not_finished"]:
            write(f"Not finished ({len(judged['not_finished'])}):", red=True)
            for name in judged["not_finished"]:
                write(f"    {name}")
        if judged["not_applicable"]:
            write(f"Not applicable ({len(judged['not_applicable'])}):")
            for item in judged["not_applicable"]:
                write(f"    {item['scenario']}: {item['reason']}")
        if self.missing:
            write(
                f"The phrasebook has no entry for {len(self.missing)} message(s) "
                "the scenarios check:"
            )
            for message in self.missing:
                write(f'    "{message}"')

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = session.config.getoption("conformance_report", None)
        if path and not hasattr(session.config, "workerinput"):
            written = Path(path)
            written.parent.mkdir(parents=True, exist_ok=True)
            written.write_text(json.dumps(self.as_json(), indent=2) + "\n", encoding="utf-8")


def _verdict_lines(
    verdict: str, judged: dict[str, Any], deselected: int
) -> list[tuple[str, dict[str, bool]]]:
    contract, extras = judged["contract"], judged["extras"]
    applicable = contract["passed"] + contract["failed"]
    selected = f"; {deselected} scenarios deselected" if deselected else ""
    beside = f"{contract['not_applicable']} not applicable{selected}"
    if contract["set_up_failed"] or contract["not_finished"]:
        beside += (
            f"; {contract['set_up_failed']} could not be set up, "
            f"{contract['not_finished']} did not finish"
        )
    if verdict == "conforms to the contract":
        said = f"conforms ({contract['passed']} of {applicable} scenarios passed, {beside})"
        colour = {"green": True}
    elif verdict == "does not conform":
        said = f"does not conform ({contract['failed']} of {applicable} scenarios failed, {beside})"
        colour = {"red": True}
    else:
        said, colour = f"{verdict} ({beside})", {"yellow": True}
    lines = [(f"The round trip's contract: {said}", colour)]
    judged_extras = extras["passed"] + extras["failed"]
    lines.append(
        (
            f"This project's extras: {extras['passed']} of {judged_extras} passed, "
            f"{extras['not_applicable']} not applicable",
            {},
        )
    )
    return lines


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
    return str(reason).removeprefix("Skipped: ")


def _table(layers: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    lines = [
        f"{'layer':<10}{'contract passed':>17}{'failed':>8}{'extras passed':>15}{'failed':>8}"
        f"{'not applicable':>16}"
    ]
    for layer, counts in layers.items():
        contract, extras = counts["contract"], counts["extras"]
        lines.append(
            f"{layer:<10}{contract['passed']:>17}{contract['failed']:>8}{extras['passed']:>15}"
            f"{extras['failed']:>8}{contract['not_applicable'] + extras['not_applicable']:>16}"
        )
    return lines


def _failures(
    differences: list[tuple[str, Difference]], scenarios: dict[str, Scenario]
) -> list[str]:
    """Each failure with its step, what differed and what the layers said; failures
    alike before any step ran (a sign-in the CLI does not offer, a stack that cannot
    start) told once, with how many scenarios they stopped."""
    alike: dict[tuple[str, str], list[str]] = {}
    lines = []
    for test_id, difference in differences:
        if difference.in_setup:
            alike.setdefault((difference.step, difference.detail), []).append(test_id)
    told: set[tuple[str, str]] = set()
    for test_id, difference in differences:
        key = (difference.step, difference.detail)
        if key in alike and len(alike[key]) > 1:
            if key not in told:
                told.add(key)
                lines.append(f"✗ {len(alike[key])} scenarios failed alike, in set-up:")
                lines.append(f"    {difference.step}")
                lines.append(f"    {difference.kind}: {difference.detail}")
            continue
        scenario = scenarios.get(test_id)
        which = "contract" if scenario is None or scenario.contract else "extra"
        which += ", in set-up" if difference.in_setup else ""
        where = ": ".join(p for p in (difference.feature, difference.scenario) if p)
        example = f" [{difference.example}]" if difference.example else ""
        lines.append(f"✗ {which} · {where}{example}")
        lines.append(f"    {difference.step}")
        lines.append(f"    {difference.kind}: {difference.detail}")
        lines.extend(f"    {said}" for said in difference.said)
    return lines


_PHRASEBOOK = pytest.StashKey[Phrasebook]()
_STEP_FAILED = pytest.StashKey[Difference]()
_NAMES = pytest.StashKey[tuple[str, str]]()  # the scenario's feature and its own name
_PROPERTY = "trace_suite_difference"  # carries a failed scenario's difference on its report
_SCENARIO = "trace_suite_scenario"  # carries what a scenario judges on each of its reports
# What the layers said in a scenario (the CLI's last line, the handler's errors, the
# storage's refusals), put by the suite's fixtures for the report of a failure.
WITNESSES = pytest.StashKey[Callable[[], list[str]]]()
NO_ENTRY = MissingPhrase.kind
# Where a scenario failed outside any step: its fixtures, a step not found, its last check.
_PHASES = {"setup": "before its steps", "call": "in its steps", "teardown": "after its steps"}


def implementations(settings: Settings) -> dict[str, str]:
    """The implementations a run judges, named as a reader would name them."""
    code = handler_code(settings)
    if code is None:
        assert settings.deployed is not None
        handler = f"the deployed API's, at {settings.deployed.api_url}"
    else:
        handler = ("" if settings.handler else "this project's handler, ") + code.description
        if settings.function.policy is not None:
            handler += f", under the policy {settings.function.policy_source}"
    book = settings.phrasebook
    agent = settings.agent
    return {
        "CLI": (
            "this project's bgagent, in-process (bgagent.main.run)"
            if settings.cli is None
            else f"{shlex.join(settings.cli)}, as a process of its own"
        ),
        "handler": handler,
        "agent": "this project's pipeline (trace_agent.pipeline.run_task)"
        if agent is None
        else f"{agent.dump} and {agent.upload}"
        + (f", then {agent.finish}" if agent.finish else ", then this project's terminal write"),
        "phrasebook": str(book)
        + (" (this project's wording)" if book == DEFAULT_PHRASEBOOK else ""),
    }


def begin(config: pytest.Config) -> None:
    """Judge this run, whatever its mark expression: a run that holds scenarios gets its
    verdict. One that says it holds scenarios is stopped now by a phrasebook or handler
    that cannot be used; another (a unit test run) is not, and names none."""
    try:
        named, config.stash[_PHRASEBOOK] = _usable()
    except pytest.UsageError as unusable:
        if selects_scenarios(config):
            raise
        named = {"settings": f"unusable: {unusable}"}
    config.pluginmanager.register(Judgement(named), "trace-suite-judgement")


def _usable() -> tuple[dict[str, str], Phrasebook]:
    try:
        settings = Settings.current()
        default = Phrasebook.load(DEFAULT_PHRASEBOOK)
        path = settings.phrasebook
        book = default if path == DEFAULT_PHRASEBOOK else Phrasebook.load(path, names_from=default)
        return implementations(settings), book
    except (PhrasebookError, SettingsError) as unusable:
        raise pytest.UsageError(str(unusable)) from None


def phrasebook_of(config: pytest.Config) -> Phrasebook:
    """The run's phrasebook: loaded as it began, or now for a run whose mark expression
    did not say it held scenarios."""
    if _PHRASEBOOK not in config.stash:
        config.stash[_PHRASEBOOK] = _usable()[1]
    return config.stash[_PHRASEBOOK]


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    request.node.stash[_NAMES] = (feature.name, scenario.name)


def names_from_its_test(item: pytest.Item) -> tuple[str, str]:
    """A scenario that failed before it began: pytest-bdd's docstring of its test is
    "<feature file>: <scenario>"."""
    named = getattr(getattr(item, "obj", None), "__doc__", None) or ""
    path, separator, scenario = named.partition(".feature: ")
    if not separator:
        return "", item.name
    return Path(path).name + ".feature", scenario


def pytest_bdd_step_error(
    request: pytest.FixtureRequest,
    feature: Any,
    scenario: Any,
    step: Any,
    exception: BaseException,
) -> None:
    kind = exception.kind if isinstance(exception, Misjudged) else "behaviour"
    message = exception.message if isinstance(exception, MissingPhrase) else ""
    request.node.stash[_STEP_FAILED] = Difference(
        feature=feature.name,
        scenario=scenario.name,
        example=_example(request.node),
        step=f"{step.keyword} {step.name}",
        kind=kind,
        detail=first_line(str(exception))
        if isinstance(exception, AssertionError)
        else f"{type(exception).__name__}: {first_line(str(exception))}",
        message=message,
        in_setup=getattr(step, "type", "") == "given",  # an "And" after a Given is one too
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Each report of a scenario says what it judges; a failed one carries how it
    differed and what the layers said, to whichever process reports."""
    report: pytest.TestReport = yield
    if item.get_closest_marker("integration") is None:
        return report
    feature, scenario = item.stash.get(_NAMES, None) or names_from_its_test(item)
    example = _example(item)
    tags = {mark.name for mark in item.iter_markers()}
    named = f"{feature}: {scenario}" + (f" [{example}]" if example else "")
    report.user_properties.append(
        (
            _SCENARIO,
            {
                "name": named,
                "contract": EXTRA not in tags,
                "layers": [layer for layer in LAYERS if layer in tags],
            },
        )
    )
    if not report.failed:
        return report
    difference = item.stash.get(_STEP_FAILED, None)
    if difference is None or report.when != "call":
        crash = getattr(report.longrepr, "reprcrash", None)
        difference = Difference(
            feature=feature,
            scenario=scenario,
            example=example,
            step=_PHASES[report.when],
            kind="behaviour",
            # An assertion says what differed; another exception is named.
            detail=first_line(crash.message if crash else str(report.longrepr)).removeprefix(
                "AssertionError: "
            ),
            in_setup=report.when == "setup",
        )
    witnesses = item.stash.get(WITNESSES, None)
    if witnesses is not None and not difference.said:
        difference.said = [first_line(said) for said in witnesses()]
    report.user_properties.append((_PROPERTY, asdict(difference)))
    return report


def _example(item: pytest.Item) -> str:
    """The values of the outline's example row the test ran, if it is one."""
    callspec = getattr(item, "callspec", None)
    values = callspec.params.get("_pytest_bdd_example", {}) if callspec else {}
    return " | ".join(values.values())


def first_line(text: str) -> str:
    """A detail in one line of at most 400 characters."""
    line = text.strip().splitlines()[0] if text.strip() else "(no message)"
    return line if len(line) <= _DETAIL_CHARACTERS else line[: _DETAIL_CHARACTERS - 1] + "…"
