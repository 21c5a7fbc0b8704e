"""What the suite judged, and where each failed scenario differed.

The scenarios judge a CLI, a handler and the wording of a phrasebook together. At
the end of a run that held scenarios, the terminal summary names them and lists each
failed scenario with the step that failed and what differed there: a behaviour
(exit status, bytes, files, lines), the wording of a message, or a message the
phrasebook has no entry for. ``--conformance-report=PATH`` writes the same as JSON,
which the living documentation renders.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass
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
from testkit.settings import Settings, SettingsError
from testkit.stack.session import handler_code

_DETAIL_CHARACTERS = 400


def selects_scenarios(config: pytest.Config) -> bool:
    """Whether the run's mark expression names `integration` other than as `not
    integration`: whether it may hold scenarios."""
    markexpr = " ".join(config.option.markexpr.split())
    return re.search(r"(?<!not )\bintegration\b", markexpr) is not None


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


class Judgement:
    """What one run judged, and how its failed scenarios differed: kept by the process
    that reports (under xdist, the controller), from the reports the scenarios sent."""

    def __init__(self, implementations: dict[str, str]) -> None:
        self.implementations = implementations
        self.ran: set[str] = set()
        self.differences: dict[str, Difference] = {}  # by test id

    @property
    def missing(self) -> list[str]:
        return sorted({d.message for d in self.differences.values() if d.kind == NO_ENTRY})

    def as_json(self) -> dict[str, Any]:
        return {
            "implementations": self.implementations,
            "scenarios": {"ran": len(self.ran), "passed": len(self.ran - set(self.differences))},
            "failed": [asdict(d) for d in self.differences.values()],
            "missing_from_phrasebook": self.missing,
        }

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A scenario ran once it was set up; one skipped, or expected to fail, judged
        nothing."""
        if "integration" not in report.keywords:
            return
        if report.skipped:
            self.ran.discard(report.nodeid)
            return
        if report.when == "setup":
            self.ran.add(report.nodeid)
        for name, value in report.user_properties:
            if name == _PROPERTY and isinstance(value, dict):
                self.differences.setdefault(report.nodeid, Difference(**value))
                self.ran.add(report.nodeid)  # a failure is a run, whenever it came

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.ran:
            return
        write = terminalreporter.write_line
        terminalreporter.section("what the acceptance suite judged")
        for part, name in self.implementations.items():
            write(f"{part}: {name}")
        counts = self.as_json()["scenarios"]
        failed = len(self.differences)
        write(f"{counts['ran']} scenarios ran: {counts['passed']} passed, {failed} failed")
        for difference in self.differences.values():
            where = ": ".join(p for p in (difference.feature, difference.scenario) if p)
            example = f" [{difference.example}]" if difference.example else ""
            write(f"✗ {where}{example}", red=True)
            write(f"    {difference.step}")
            write(f"    {difference.kind}: {difference.detail}")
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


_PHRASEBOOK = pytest.StashKey[Phrasebook]()
_STEP_FAILED = pytest.StashKey[Difference]()
_NAMES = pytest.StashKey[tuple[str, str]]()  # the scenario's feature and its own name
_PROPERTY = "trace_suite_difference"  # carries a failed scenario's difference on its report
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
    book = settings.phrasebook
    return {
        "CLI": (
            "this project's bgagent, in-process (bgagent.main.run)"
            if settings.cli is None
            else f"{shlex.join(settings.cli)}, as a process of its own"
        ),
        "handler": handler,
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
        settings = Settings.read()
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
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed scenario's report carries how it differed, to whichever process reports."""
    report: pytest.TestReport = yield
    if not report.failed or item.get_closest_marker("integration") is None:
        return report
    difference = item.stash.get(_STEP_FAILED, None)
    if difference is None or report.when != "call":
        crash = getattr(report.longrepr, "reprcrash", None)
        feature, scenario = item.stash.get(_NAMES, None) or names_from_its_test(item)
        difference = Difference(
            feature=feature,
            scenario=scenario,
            example=_example(item),
            step=_PHASES[report.when],
            kind="behaviour",
            # An assertion says what differed; another exception is named.
            detail=first_line(crash.message if crash else str(report.longrepr)).removeprefix(
                "AssertionError: "
            ),
        )
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
