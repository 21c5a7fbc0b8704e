"""Whether a process of this machine still runs: how a test session tells the leftovers
of a killed session from those of one still going."""

from __future__ import annotations

import os


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True
