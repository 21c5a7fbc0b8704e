"""The docs' lists of what lives where agree with the tree: a module added, moved or
removed without its line in the README or features/README.md fails here."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTED_SUFFIXES = (".py", ".mjs", ".cjs", ".toml", ".feature")
_LEFT_OUT = {"node_modules", "build", "cdk.out", "__pycache__"}


def files_under(folder: str) -> set[str]:
    found = set()
    for path in (ROOT / folder).rglob("*"):
        parts = path.relative_to(ROOT).parts
        hidden = any(part.startswith(".") or part in _LEFT_OUT for part in parts)
        if path.is_file() and path.suffix in LISTED_SUFFIXES and not hidden:
            found.add(path.relative_to(ROOT).as_posix())
    return found


def section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_every_file_of_the_suite_the_kit_and_the_tools_is_where_the_docs_say() -> None:
    """features/README.md's "Where things live" names each file, or a pattern of them."""
    text = (ROOT / "features" / "README.md").read_text(encoding="utf-8")
    named = re.findall(
        r"`((?:features|testkit|tools)/[\w./*-]+)`", section(text, "## Where things live")
    )
    listed = {
        path.relative_to(ROOT).as_posix()
        for pattern in named
        for path in ROOT.glob(pattern)
        if path.suffix in LISTED_SUFFIXES
    }
    unmatched = [pattern for pattern in named if pattern.endswith(LISTED_SUFFIXES)]
    unmatched = [pattern for pattern in unmatched if not list(ROOT.glob(pattern))]
    assert unmatched == [], "named in features/README.md, but not in the tree"
    tree = files_under("features") | files_under("testkit") | files_under("tools")
    assert sorted(tree - listed) == [], "in the tree, but not in features/README.md"


def test_the_readme_layout_names_every_folder_of_the_project() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = section(text, "## Layout").split("```\n", 2)[1]
    named = set(re.findall(r"^(\w+)/", block, flags=re.MULTILINE))
    folders = {
        path.name
        for path in ROOT.iterdir()
        if path.is_dir()
        and path.name[0] not in "._"
        and path.name not in _LEFT_OUT
        and not path.name.endswith(".egg-info")
    }
    assert named == folders
    kit = block.split("testkit/", 1)[1].split("\ntools/", 1)[0]
    assert set(re.findall(r"\b(\w+)/ \(", kit)) == {
        path.name for path in (ROOT / "testkit").iterdir() if path.is_dir() and path.name[0] != "_"
    }


def test_any_module_of_the_kit_or_the_steps_may_be_imported_first() -> None:
    """A script or a test may import any of them first: no import cycle between them."""
    ours = ("testkit", "features")
    names = sorted(
        ".".join(path.with_suffix("").relative_to(ROOT).parts)
        for path in [*(ROOT / "testkit").rglob("*.py"), *(ROOT / "features/steps").glob("*.py")]
    )
    loaded = {name: module for name, module in sys.modules.items() if name.split(".")[0] in ours}
    try:
        for name in names:
            for other in [n for n in sys.modules if n.split(".")[0] in ours]:
                del sys.modules[other]
            importlib.import_module(name.removesuffix(".__init__"))
    finally:
        for other in [n for n in sys.modules if n.split(".")[0] in ours]:
            del sys.modules[other]
        sys.modules.update(loaded)
