"""TRACE_SUITE_HANDLER: which code the local Lambda runs, and how it is started."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import trace_infra
from testkit.lambda_.function_code import (
    BRIDGE,
    FunctionCodeError,
    _node_version,
    function_code,
)
from testkit.settings import ENV_HANDLER
from trace_infra.definitions import GET_TRACE_URL

MINE = GET_TRACE_URL.handler


def test_unset_it_is_this_projects_handler_from_the_folder_the_construct_packages() -> None:
    for named in ("", " "):
        code = function_code(MINE, named)
        assert code.command == (sys.executable, "-m", "awslambdaric", MINE)
        assert code.task_root == Path(trace_infra.__file__).resolve().parent.parent
        assert code.handler == MINE
        assert dict(code.runtime_environment)["PYTHONPATH"] == str(code.task_root)


def test_this_projects_handler_named_by_its_import_path_runs_as_when_unset() -> None:
    assert function_code(MINE, MINE) == function_code(MINE, "")


def test_a_python_module_of_their_own_runs_from_its_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "their_handler.py").write_text("def handle(event, context):\n    return {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = function_code(MINE, "their_handler.handle")
    assert code.command[-1] == "their_handler.handle"
    assert code.task_root == tmp_path.resolve()
    assert "their_handler.handle (Python" in code.description
    assert "their_handler" not in sys.modules  # found, not imported


def test_a_namespace_package_of_their_own_runs_from_the_folder_holding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "their_api" / "handlers").mkdir(parents=True)  # no __init__.py
    (tmp_path / "their_api" / "handlers" / "trace.py").write_text("def handle(e, c): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = function_code(MINE, "their_api.handlers.trace.handle")
    assert code.task_root == tmp_path.resolve()


def test_a_namespace_package_in_two_folders_runs_from_the_first_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("first", "second"):
        (tmp_path / folder / "their_api").mkdir(parents=True)
    (tmp_path / "second" / "their_api" / "trace.py").write_text("def handle(e, c): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path / "second"))
    monkeypatch.syspath_prepend(str(tmp_path / "first"))
    code = function_code(MINE, "their_api.trace.handle")
    assert code.task_root == (tmp_path / "first").resolve()


def test_a_node_that_cannot_run_has_no_version(tmp_path: Path) -> None:
    not_a_program = tmp_path / "node"
    not_a_program.write_text("")  # not executable
    assert _node_version(str(not_a_program)) == "?"


def test_a_node_file_and_export_run_through_the_bridge(tmp_path: Path) -> None:
    for name in ("handler.js", "handler.mjs", "handler.cjs", "handler.JS"):
        file = tmp_path / name
        file.write_text("exports.handle = async () => ({});\n")
        code = function_code(MINE, f"{file}:handle")
        assert code.command[1:] == (str(BRIDGE), str(file.resolve()), "handle")
        assert Path(code.command[0]).name == "node"
        assert code.task_root == tmp_path.resolve()
        assert code.handler == "handler.handle"
        assert "Node.js v" in code.description


@pytest.mark.parametrize(
    ("named", "says"),
    [
        ("lambda_handler", "a Python handler is named module.function"),
        (".lambda_handler", "a Python handler is named module.function"),
        ("trace_infra.", "a Python handler is named module.function"),
        ("no_such_module_here.handle", "no module file 'no_such_module_here' on this Python's"),
        ("sys.exit", "no module file 'sys' on this Python's path"),
        ("..their.handle", "no module file '' on this Python's path"),
        ("{absent}/handler.js:handle", "no file"),
        ("{absent}/handler.mjs:", "name the export after ':'"),
        ("{absent}/handler.js", "name the export too, as in"),
        ("{absent}/handler.ts:handler", "a Node.js handler is FILE.js:export"),
        ("{absent}/handler.py:handler", "a Node.js handler is FILE.js:export"),
        ("handlers/get_trace_url.lambda_handler", "a Python one package.module.function"),
    ],
)
def test_a_handler_that_cannot_run_is_refused_in_one_line(
    tmp_path: Path, named: str, says: str
) -> None:
    with pytest.raises(FunctionCodeError) as refused:
        function_code(MINE, named.format(absent=tmp_path / "absent"))
    assert says in str(refused.value)
    assert ENV_HANDLER in str(refused.value)


def test_a_node_handler_without_node_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "handler.js"
    file.write_text("")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FunctionCodeError, match="needs node on PATH"):
        function_code(MINE, f"{file}:handle")
