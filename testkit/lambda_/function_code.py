"""The code the local Lambda runs behind the API Gateway: this project's handler, or
the one ``TRACE_SUITE_HANDLER`` names.

- ``package.module.function``: a Python handler, as Lambda's handler setting names
  it, found on this Python's import path. Its task root is the folder holding the
  top-level package; it runs under the Python runtime interface client
  (``awslambdaric``). This project's handler is run exactly so.
- ``path/to/file.js:export`` (or ``.mjs``, ``.cjs``): a Node.js handler, run by
  the harness's bridge (``node_bridge.mjs``), a small runtime that polls the same
  Runtime API and hands the export the event and a Lambda-like context.

Either way the process gets only the function's environment and identity.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from testkit.settings import ENV_HANDLER, SettingsError

BRIDGE = Path(__file__).resolve().with_name("node_bridge.mjs")
_NODE_SUFFIXES = (".js", ".mjs", ".cjs")


class FunctionCodeError(SettingsError):
    """TRACE_SUITE_HANDLER names nothing the local Lambda can run."""


@dataclass(frozen=True)
class FunctionCode:
    """What the function's process runs, from where, and how to say it."""

    command: tuple[str, ...]
    task_root: Path
    handler: str  # Lambda's _HANDLER
    description: str
    runtime_environment: tuple[tuple[str, str], ...] = ()


def python_handler(handler: str) -> FunctionCode:
    module, _, function = handler.rpartition(".")
    if not module or not function:
        raise FunctionCodeError(
            f"{ENV_HANDLER}={handler!r}: a Python handler is named module.function"
        )
    top = module.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except ValueError:  # an empty name, as in "..module.function"
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec else []
    if folders:  # a package (a namespace package too): its task root holds its folder
        task_root = Path(folders[0]).resolve().parent
    elif spec is not None and spec.origin and Path(spec.origin).is_file():
        task_root = Path(spec.origin).resolve().parent
    else:  # none, or one built into Python
        raise FunctionCodeError(
            f"{ENV_HANDLER}={handler!r}: no module file {top!r} on this Python's path"
        )
    return FunctionCode(
        command=(sys.executable, "-m", "awslambdaric", handler),
        task_root=task_root,
        handler=handler,
        description=f"{handler} (Python, under the runtime interface client)",
        runtime_environment=(("PYTHONPATH", str(task_root)), ("PYTHONUNBUFFERED", "1")),
    )


def node_handler(file: Path, export: str) -> FunctionCode:
    node = shutil.which("node")
    if node is None:
        raise FunctionCodeError(f"{ENV_HANDLER}: a Node.js handler needs node on PATH")
    if not file.is_file():
        raise FunctionCodeError(f"{ENV_HANDLER}: no file {file}")
    return FunctionCode(
        command=(node, str(BRIDGE), str(file), export),
        task_root=file.parent,
        handler=f"{file.stem}.{export}",
        description=f"{file}:{export} (Node.js {_node_version(node)}, by the harness's bridge)",
    )


def function_code(default: str, named: str) -> FunctionCode:
    """The code TRACE_SUITE_HANDLER names (``named``); this project's handler (``default``)
    when it names none."""
    named = named.strip()
    if not named:
        return python_handler(default)
    path, colon, export = named.rpartition(":")
    if colon and path.lower().endswith(_NODE_SUFFIXES):
        if not export:
            raise FunctionCodeError(f"{ENV_HANDLER}={named!r}: name the export after ':'")
        return node_handler(Path(path).expanduser().resolve(), export)
    if named.lower().endswith(_NODE_SUFFIXES):
        raise FunctionCodeError(
            f"{ENV_HANDLER}={named!r}: name the export too, as in {named}:handler"
        )
    if "/" in named or ":" in named:
        raise FunctionCodeError(
            f"{ENV_HANDLER}={named!r}: a Node.js handler is FILE.js:export (or .mjs, "
            ".cjs: TypeScript once compiled), a Python one package.module.function"
        )
    return python_handler(named)


@functools.cache
def _node_version(node: str) -> str:
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return done.stdout.strip() or "?"
