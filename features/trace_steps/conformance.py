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
import os
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from trace_harness.deployed import ENV_API_URL
from trace_harness.function_code import ENV_SUITE_HANDLER, FunctionCodeError, function_code
from trace_harness.phrasebook import (
    DEFAULT_PHRASEBOOK,
    MissingPhrase,
    Phrasebook,
    PhrasebookError,
    WordingDiffers,
    phrasebook_path,
)
from trace_infra.definitions import GET_TRACE_URL
from trace_steps.cli import suite_cli

_DETAIL_CHARACTERS = 400


@dataclass
class Difference:
    """A failed scenario: where it failed, and what differed there."""

    feature: str
    scenario: str
    example: str
    step: str
    kind: str  # "behaviour", "wording" or "no phrasebook entry"
    detail: str


@dataclass
class Judgement:
    implementations: dict[str, str]
    phrasebook: Phrasebook
    ran: int = 0
    passed: int = 0
    differences: dict[str, Difference] = field(default_factory=dict)  # by test id

    def as_json(self) -> dict[str, Any]:
        return {
            "implementations": self.implementations,
            "scenarios": {"ran": self.ran, "passed": self.passed},
            "failed": [asdict(d) for d in self.differences.values()],
            "missing_from_phrasebook": sorted(self.phrasebook.missing),
        }


_JUDGEMENT = pytest.StashKey[Judgement]()


def implementations(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The implementations a run judges, named as a reader would name them."""
    cli = suite_cli(environ)
    book = phrasebook_path(environ)
    if environ.get(ENV_API_URL):
        handler = f"the deployed API's, at {environ[ENV_API_URL]}"
    else:
        code = function_code(GET_TRACE_URL.handler, environ)
        mine = "" if environ.get(ENV_SUITE_HANDLER, "").strip() else "this project's handler, "
        handler = mine + code.description
    return {
        "CLI": (
            "this project's bgagent, in-process (bgagent.main.run)"
            if cli is None
            else f"{shlex.join(cli)}, as a process of its own"
        ),
        "handler": handler,
        "phrasebook": str(book)
        + (" (this project's wording)" if book == DEFAULT_PHRASEBOOK else ""),
    }


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("trace suite").addoption(
        "--conformance-report",
        metavar="PATH",
        help="write what the acceptance suite judged, and how each failed scenario "
        "differed, as JSON (for python -m trace_harness.living_docs --conformance)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """A phrasebook or a handler that cannot be used stops the run before it starts."""
    try:
        named = implementations()
        book = Phrasebook.load(phrasebook_path())
    except (PhrasebookError, FunctionCodeError) as unusable:
        raise pytest.UsageError(str(unusable)) from None
    config.stash[_JUDGEMENT] = Judgement(named, book)


@pytest.fixture(scope="session")
def phrasebook(pytestconfig: pytest.Config) -> Phrasebook:
    """How the CLI under judgement words the messages the scenarios check."""
    return pytestconfig.stash[_JUDGEMENT].phrasebook


def pytest_bdd_step_error(
    request: pytest.FixtureRequest,
    feature: Any,
    scenario: Any,
    step: Any,
    step_func: Any,
    step_func_args: Any,
    exception: BaseException,
) -> None:
    kind = "behaviour"
    if isinstance(exception, WordingDiffers):
        kind = "wording"
    elif isinstance(exception, MissingPhrase):
        kind = "no phrasebook entry"
    request.config.stash[_JUDGEMENT].differences[request.node.nodeid] = Difference(
        feature=feature.name,
        scenario=scenario.name,
        example=_example(request.node),
        step=f"{step.keyword} {step.name}",
        kind=kind,
        detail=_first_line(str(exception)),
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    judgement = item.config.stash.get(_JUDGEMENT, None)
    if judgement is None or item.get_closest_marker("integration") is None or report.skipped:
        return report
    if report.when == "call":
        judgement.ran += 1
        judgement.passed += report.passed
    if report.failed and report.nodeid not in judgement.differences:
        crash = getattr(report.longrepr, "reprcrash", None)
        # pytest-bdd names a scenario's test "<feature>: <scenario>" in its docstring.
        named = getattr(getattr(item, "obj", None), "__doc__", None) or item.name
        feature, _, scenario = named.partition(": ")
        judgement.differences[report.nodeid] = Difference(
            feature=feature,
            scenario=scenario,
            example=_example(item),
            step="before its steps" if report.when == "setup" else "after its steps",
            kind="behaviour",
            detail=_first_line(crash.message if crash else str(report.longrepr)),
        )
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    judgement = config.stash.get(_JUDGEMENT, None)
    if judgement is None or not judgement.ran:
        return
    write = terminalreporter.write_line
    terminalreporter.section("what the acceptance suite judged")
    for part, name in judgement.implementations.items():
        write(f"{part}: {name}")
    failed = len(judgement.differences)
    write(f"{judgement.ran} scenarios ran: {judgement.passed} passed, {failed} failed")
    for difference in judgement.differences.values():
        where = ": ".join(p for p in (difference.feature, difference.scenario) if p)
        example = f" [{difference.example}]" if difference.example else ""
        write(f"✗ {where}{example}", red=True)
        write(f"    {difference.step}")
        write(f"    {difference.kind}: {difference.detail}")
    missing = sorted(judgement.phrasebook.missing)
    if missing:
        write(f"The phrasebook has no entry for {len(missing)} message(s) the scenarios check:")
        for message in missing:
            write(f'    "{message}"')


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("conformance_report", None)
    judgement = session.config.stash.get(_JUDGEMENT, None)
    if path and judgement is not None:
        report = Path(path)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(judgement.as_json(), indent=2) + "\n", encoding="utf-8")


def _example(item: pytest.Item) -> str:
    """The values of the outline's example row the test ran, if it is one."""
    callspec = getattr(item, "callspec", None)
    values = callspec.params.get("_pytest_bdd_example", {}) if callspec else {}
    return " | ".join(values.values())


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(no message)"
    return line if len(line) <= _DETAIL_CHARACTERS else line[: _DETAIL_CHARACTERS - 1] + "…"
