"""What the suite runs against, and what each target can do.

Three targets, chosen by the environment: the suite's own moto (the default);
another AWS emulator (``TRACE_SUITE_AWS_ENDPOINT``), in front of which the suite
still runs its own S3 gate, function and API Gateway; a stack the suite did not
create (``TRACE_SUITE_API_URL``: a deployed dev stack, or the sandbox standing in
for one). A scenario tagged with a capability its target lacks is skipped, and
says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Each capability is a tag a scenario can carry, with what it means.
CAPABILITIES = {
    "needs_local_stack": (
        "needs the suite's own stack: its S3 gate, function and API Gateway (their clocks, "
        "faults and logs), or a change to the stack's shared configuration"
    ),
    "needs_moto": "relies on moto's own behaviour (a Deny bucket policy blocks every request)",
}


class NotOnThisTarget(Exception):
    """A scenario asked for something its target does not have."""


@dataclass(frozen=True)
class Target:
    description: str
    provides: frozenset[str]

    def skip_reason(self, tags: Iterable[str]) -> str | None:
        for tag in tags:
            if tag in CAPABILITIES and tag not in self.provides:
                return f"{CAPABILITIES[tag]}; {self.description}"
        return None


OWN_MOTO = Target("the suite's own moto on 127.0.0.1", frozenset(CAPABILITIES))


def other_emulator(endpoint: str) -> Target:
    return Target(
        f"TRACE_SUITE_AWS_ENDPOINT points the suite at {endpoint}",
        frozenset({"needs_local_stack"}),
    )


def stack_not_created_here(api_url: str) -> Target:
    return Target(f"TRACE_SUITE_API_URL points the suite at {api_url}", frozenset())


def target_for(*, api_url: str | None, emulator: str | None) -> Target:
    """The target the environment chose: a stack not created here wins over an emulator."""
    if api_url:
        return stack_not_created_here(api_url)
    if emulator:
        return other_emulator(emulator)
    return OWN_MOTO
