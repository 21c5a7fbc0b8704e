"""Made-up agent runs: the events a task's run would hand the pipeline."""

from __future__ import annotations

from typing import Any


def agent_run(turns: int, *, failed: bool = False) -> list[dict[str, Any]]:
    """A plausible run: per turn an assistant turn and a policy decision, then screening
    and the result. Text is non-ASCII on purpose: the trace must carry it intact."""
    events: list[dict[str, Any]] = []
    for turn in range(1, turns + 1):
        events.append(
            {
                "event": "TRAJECTORY_TURN",
                "turn": turn,
                "role": "assistant",
                "content": [{"type": "text", "text": f"Turn {turn}: lecture du dépôt ✓"}],
                "tool_calls": [{"name": "bash", "input": {"command": f"pytest -k case_{turn}"}}],
                "usage": {"input_tokens": 1200 + turn, "output_tokens": 300 + turn},
            }
        )
        events.append(
            {"event": "POLICY_DECISION", "turn": turn, "tool": "bash", "decision": "allow"}
        )
    events.append({"event": "OUTPUT_SCREENING", "verdict": "clean", "findings": []})
    events.append(
        {
            "event": "TRAJECTORY_RESULT",
            "is_error": failed,
            "num_turns": turns,
            "result": "Opened pull request #42" if not failed else "Tests still fail",
        }
    )
    return events
