"""moto's server (and its gates) launched as early as a pytest session can tell it may
run scenarios: as the project's conftest registers, before the kit's heavier modules
are imported, so that moto's own start-up runs beside pytest's.

Only light modules are imported here. A wrong guess costs only time: a server nobody
uses is stopped once the settings say the stack is elsewhere, or at the session's end.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from testkit.aws.endpoint import MotoServer

LAUNCHED = pytest.StashKey[MotoServer | None]()


def selects_scenarios(config: pytest.Config) -> bool:
    """Whether the run's mark expression names `integration` other than as `not
    integration`: whether it may hold scenarios."""
    markexpr = " ".join(_options(config).markexpr.split())
    return re.search(r"(?<!not )\bintegration\b", markexpr) is not None


def launch_early(config: pytest.Config) -> None:
    """moto's server, for a run that may hold scenarios, collects more than it lists,
    and is not the controller of parallel workers (each worker launches its own)."""
    options = _options(config)
    controller = bool(getattr(options, "numprocesses", None)) and not hasattr(config, "workerinput")
    if selects_scenarios(config) and not options.collectonly and not controller:
        config.stash[LAUNCHED] = MotoServer.launch()


def take_launched(config: pytest.Config) -> MotoServer | None:
    """The server launched early, now the caller's to stop; None if there is none."""
    launched = config.stash.get(LAUNCHED, None)
    config.stash[LAUNCHED] = None
    return launched


def _options(config: pytest.Config) -> Any:
    # Before pytest parses the conftests' options, only the known ones are: -m, -n...
    return getattr(config, "known_args_namespace", None) or config.option
