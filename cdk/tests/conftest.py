from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class SynthesizedStack:
    """The app's stack, synthesized: its template as data and its output folder."""

    template: Any  # aws_cdk.assertions.Template
    json: dict[str, Any]
    outdir: Path

    def resources_of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            name: resource
            for name, resource in self.json["Resources"].items()
            if resource["Type"] == kind
        }

    def one(self, kind: str, *, name_part: str = "") -> dict[str, Any]:
        found = [r for name, r in self.resources_of(kind).items() if name_part in name]
        assert len(found) == 1, f"expected one {kind} named *{name_part}*, found {len(found)}"
        return found[0]

    def logical_id(self, kind: str) -> str:
        """The stack's own resource of that kind (not the CDK's helper resources)."""
        [name] = [name for name in self.resources_of(kind) if "AutoDelete" not in name]
        return name


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    """The app synthesized once per session: a synth takes seconds."""
    from aws_cdk.assertions import Template

    from trace_infra.app import STACK_NAME, build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(str(outdir))
    template = Template.from_stack(app.node.find_child(STACK_NAME))
    app.synth()
    return SynthesizedStack(template, template.to_json(), Path(outdir))
