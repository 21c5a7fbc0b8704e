"""moto's server is launched as early as a session can tell it may run scenarios, and
the stack opens in a thread of its own while pytest collects."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

import pytest

from testkit.settings import Settings
from testkit.stack import launch
from testkit.stack.session import StackOpening


class _Config:
    def __init__(self, **options: Any) -> None:
        defaults = {"markexpr": "", "collectonly": False, "numprocesses": None}
        self.known_args_namespace = Namespace(**(defaults | options))
        self.stash = pytest.Stash()


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(launch.MotoServer, "launch", classmethod(lambda cls: calls.append("x")))
    return calls


@pytest.mark.parametrize(
    ("options", "launches"),
    [
        ({"markexpr": "integration"}, True),
        ({"markexpr": "integration or not integration"}, True),
        ({"markexpr": "not  integration"}, False),
        ({"markexpr": ""}, False),
        ({"markexpr": "integration", "collectonly": True}, False),
        ({"markexpr": "integration", "numprocesses": 2}, False),
    ],
)
def test_moto_is_launched_only_for_a_run_that_may_hold_scenarios(
    options: dict[str, Any], launches: bool, launched: list[str]
) -> None:
    config: Any = _Config(**options)
    launch.launch_early(config)
    assert bool(launched) is launches
    launch.take_launched(config)
    assert launch.take_launched(config) is None  # taken once


def test_a_worker_of_parallel_runs_launches_its_own(launched: list[str]) -> None:
    config: Any = _Config(markexpr="integration", numprocesses=2)
    config.workerinput = {}
    launch.launch_early(config)
    assert launched == ["x"]


def test_what_kept_the_stack_from_opening_is_raised_where_it_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Refused(Exception):
        pass

    def cannot_open(settings: Settings, *, moto: Any = None) -> Any:
        class Opened:
            def __enter__(self) -> None:
                raise Refused("the handler cannot load")

            def __exit__(self, *exc: object) -> None:
                raise AssertionError("never entered, never exited")

        return Opened()

    monkeypatch.setattr("testkit.stack.session.open_stack", cannot_open)
    opening = StackOpening(Settings.current(), None)
    with pytest.raises(Refused, match="the handler cannot load"):
        opening.stack()
    opening.close()


def test_the_stack_opens_only_once_started_between_pytests_walks_of_its_loggers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its thread makes loggers, and pytest walks them at the start of each phase: it
    runs only from collection's start (``start``) to its end (``wait``)."""
    opened: list[str] = []

    class Opened:
        def __enter__(self) -> str:
            opened.append("open")
            return "stack"

        def __exit__(self, *exc: object) -> None:
            opened.append("closed")

    monkeypatch.setattr("testkit.stack.session.open_stack", lambda *a, **k: Opened())
    opening = StackOpening(Settings.current(), None)
    assert opened == []  # made at configure, not yet started
    opening.start()
    opening.wait()
    assert opened == ["open"]
    opening.start()  # a second collector's start changes nothing
    assert opening.stack() == "stack"
    opening.close()
    assert opened == ["open", "closed"]
