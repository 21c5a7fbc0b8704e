"""Living documentation: one self-contained HTML page from a suite run.

``python -m trace_harness.living_docs build/cucumber.json build/living-docs.html``
reads pytest-bdd's cucumber JSON (``--cucumberjson``; not under xdist, where
pytest-bdd 9 writes an empty list) and renders every feature with its
description, its background, each rule and scenario with its steps and their
results, and each outline as a table of its examples. No server, no script:
open the file in a browser.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

STATUS_MARK = {"passed": "✓", "failed": "✗", "skipped": "○", "undefined": "?"}


@dataclass
class Scenario:
    name: str
    keyword: str
    line: int
    tags: list[str]
    examples: list[dict[str, Any]] = field(default_factory=list)  # cucumber elements

    @property
    def status(self) -> str:
        return _worst([_element_status(e) for e in self.examples])


def _element_status(element: dict[str, Any]) -> str:
    return _worst([step.get("result", {}).get("status", "undefined") for step in element["steps"]])


def _worst(statuses: list[str]) -> str:
    for worst in ("failed", "undefined", "skipped"):
        if worst in statuses:
            return worst
    return "passed" if statuses else "undefined"


def _rules_of(feature_file: Path) -> list[tuple[int, str]]:
    """(line, title) of each Rule: pytest-bdd's JSON does not carry them."""
    if not feature_file.is_file():
        return []
    rules = []
    for number, text in enumerate(feature_file.read_text(encoding="utf-8").splitlines(), 1):
        found = re.match(r"\s*Rule:\s*(.+)", text)
        if found:
            rules.append((number, found.group(1).strip()))
    return rules


_STEP = re.compile(r"\s*(Given|When|Then|And|But|\*)\s")


def _background_length(feature_file: Path) -> int:
    """How many steps the feature's Background has: every scenario's JSON starts with them."""
    if not feature_file.is_file():
        return 0
    count, inside = 0, False
    for text in feature_file.read_text(encoding="utf-8").splitlines():
        if re.match(r"\s*Background:", text):
            inside = True
        elif inside and re.match(r"\s*(@|Scenario|Rule|Examples)", text):
            break
        elif inside and _STEP.match(text):
            count += 1
    return count


def render(features: list[dict[str, Any]], root: Path, *, generated: datetime) -> str:
    totals = {"passed": 0, "failed": 0, "skipped": 0, "undefined": 0}
    body = []
    toc = []
    for index, feature in enumerate(features):
        elements = feature.get("elements", [])
        for element in elements:
            totals[_element_status(element)] += 1
        skip = _background_length(root / feature.get("uri", ""))
        background = elements[0]["steps"][:skip] if elements else []
        scenarios: dict[tuple[str, int], Scenario] = {}
        for element in elements:
            key = (element["name"], element["line"])
            scenario = scenarios.setdefault(
                key,
                Scenario(
                    element["name"],
                    element["keyword"],
                    element["line"],
                    [t["name"] for t in element.get("tags", [])],
                ),
            )
            scenario.examples.append(element)
        anchor = f"feature-{index}"
        failed = sum(s.status == "failed" for s in scenarios.values())
        toc.append(
            f'<li><a href="#{anchor}">{escape(feature["name"])}</a> '
            f'<span class="count">{len(scenarios)} scenarios'
            f"{f', {failed} failing' if failed else ''}</span></li>"
        )
        body.append(_feature_html(feature, anchor, background, list(scenarios.values()), root))
    run = sum(totals.values())
    summary = " ".join(
        f'<span class="pill {status}">{count} {status}</span>'
        for status, count in totals.items()
        if count
    )
    return _PAGE.format(
        title="The trace round trip: living documentation",
        generated=generated.strftime("%Y-%m-%d %H:%M UTC"),
        run=run,
        summary=summary,
        toc="\n".join(toc),
        body="\n".join(body),
    )


def _feature_html(
    feature: dict[str, Any],
    anchor: str,
    background: list[dict[str, Any]],
    scenarios: list[Scenario],
    root: Path,
) -> str:
    tags = " ".join(
        f'<span class="tag">{escape(t["name"])}</span>' for t in feature.get("tags", [])
    )
    description = "".join(
        f"<p>{escape(paragraph)}</p>"
        for paragraph in feature.get("description", "").split("\n\n")
        if paragraph.strip()
    )
    parts = [
        f'<section class="feature" id="{anchor}">',
        f'<h2><span class="kw">Feature</span> {escape(feature["name"])} {tags}</h2>',
        f'<div class="description">{description}</div>',
        f'<div class="uri">{escape(feature.get("uri", ""))}</div>',
    ]
    if background:
        parts.append('<div class="background"><h3><span class="kw">Background</span></h3>')
        parts.append(_steps_html(background, with_results=False))
        parts.append("</div>")
    rules = _rules_of(root / feature.get("uri", ""))
    current_rule = None
    for scenario in sorted(scenarios, key=lambda s: s.line):
        rule = next((title for line, title in reversed(rules) if line < scenario.line), None)
        if rule != current_rule and rule is not None:
            parts.append(f'<h3 class="rule"><span class="kw">Rule</span> {escape(rule)}</h3>')
        current_rule = rule
        parts.append(_scenario_html(scenario, len(background), root / feature.get("uri", "")))
    parts.append("</section>")
    return "\n".join(parts)


def _scenario_html(scenario: Scenario, skip: int, feature_file: Path) -> str:
    tags = " ".join(f'<span class="tag">@{escape(t)}</span>' for t in scenario.tags)
    head = (
        f'<div class="scenario {scenario.status}">'
        f'<h4><span class="mark">{STATUS_MARK.get(scenario.status, "?")}</span>'
        f'<span class="kw">{escape(scenario.keyword)}</span> {escape(scenario.name)} {tags}</h4>'
    )
    if len(scenario.examples) == 1:
        return head + _steps_html(scenario.examples[0]["steps"][skip:]) + "</div>"
    source = _outline_source(feature_file, scenario.line)
    return head + _outline_html(scenario, source) + "</div>"


@dataclass
class OutlineSource:
    """An outline as written: its steps with <placeholders>, and its examples tables."""

    steps: list[tuple[str, str]]  # (keyword, text)
    header: list[str]
    rows: list[list[str]]


def _outline_source(feature_file: Path, outline_line: int) -> OutlineSource | None:
    if not feature_file.is_file():
        return None
    lines = feature_file.read_text(encoding="utf-8").splitlines()[outline_line:]
    steps: list[tuple[str, str]] = []
    header: list[str] = []
    rows: list[list[str]] = []
    in_examples = False
    for raw in lines:
        text = raw.strip()
        if re.match(r"(Scenario|Rule|Feature)", text):
            break
        if text.startswith("Examples"):
            in_examples = True
        elif text.startswith("|") and in_examples:
            cells = [cell.strip() for cell in text.strip("|").split("|")]
            if cells == header:
                continue  # the next Examples block repeats the header
            if not header:
                header = cells
            else:
                rows.append(cells)
        elif not in_examples and text and not text.startswith(("@", "#")):
            keyword, _, rest = text.partition(" ")
            steps.append((keyword, rest))
    return OutlineSource(steps, header, rows)


def _outline_html(scenario: Scenario, source: OutlineSource | None) -> str:
    """The outline as written, then its examples, each with its result."""
    if source is None or len(source.rows) != len(scenario.examples):
        return "".join(_steps_html(e["steps"]) for e in scenario.examples)
    steps = "".join(
        f'<li class="plain"><span class="kw">{escape(keyword)}</span> '
        + re.sub(r"&lt;(\w+)&gt;", r'<span class="param">&lt;\1&gt;</span>', escape(text))
        + "</li>"
        for keyword, text in source.steps
    )
    header = "".join(f"<th>{escape(name)}</th>" for name in source.header)
    rows, errors = [], []
    for element, cells in zip(scenario.examples, source.rows, strict=True):
        status = _element_status(element)
        row = "".join(f"<td>{escape(cell)}</td>" for cell in cells)
        rows.append(
            f'<tr class="{status}"><td class="mark">{STATUS_MARK.get(status, "?")}</td>{row}</tr>'
        )
        errors += [
            f"<pre>{escape(' | '.join(cells))}: {escape(step['result']['error_message'])}</pre>"
            for step in element["steps"]
            if step.get("result", {}).get("error_message")
        ]
    return (
        f'<ul class="steps">{steps}</ul>'
        f'<table class="examples"><tr><th></th>{header}</tr>{"".join(rows)}</table>'
        + "".join(errors)
    )


def _steps_html(steps: list[dict[str, Any]], *, with_results: bool = True) -> str:
    items = []
    for step in steps:
        result = step.get("result", {})
        status = result.get("status", "undefined") if with_results else "plain"
        duration = result.get("duration", 0) / 1e9 if with_results else 0
        error = result.get("error_message") if with_results else None
        items.append(
            f'<li class="{status}"><span class="kw">{escape(step["keyword"])}</span> '
            f"{escape(step['name'])}"
            + (f'<span class="time">{duration * 1000:.0f} ms</span>' if with_results else "")
            + (f"<pre>{escape(error)}</pre>" if error else "")
            + "</li>"
        )
    return f'<ul class="steps">{"".join(items)}</ul>'


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  :root {{ --ok:#1a7f37; --bad:#cf222e; --skip:#9a6700; --ink:#1f2328; --muted:#656d76;
          --line:#d0d7de; --soft:#f6f8fa; }}
  body {{ font: 15px/1.55 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
          color: var(--ink); margin: 0; background: #fff; }}
  main {{ max-width: 980px; margin: 0 auto; padding: 32px 24px 64px; }}
  header h1 {{ font-size: 28px; margin: 0 0 4px; }}
  header .meta {{ color: var(--muted); margin-bottom: 12px; }}
  .pill {{ display:inline-block; padding:2px 10px; border-radius:999px; font-weight:600;
           font-size:13px; margin-right:6px; }}
  .pill.passed {{ background:#dafbe1; color:var(--ok); }}
  .pill.failed {{ background:#ffebe9; color:var(--bad); }}
  .pill.skipped, .pill.undefined {{ background:#fff8c5; color:var(--skip); }}
  nav ul {{ padding-left: 18px; }} nav .count {{ color: var(--muted); font-size: 13px; }}
  .feature {{ border-top: 1px solid var(--line); margin-top: 36px; padding-top: 8px; }}
  .feature h2 {{ font-size: 22px; margin-bottom: 6px; }}
  .description p {{ margin: 6px 0; max-width: 760px; }}
  .uri {{ color: var(--muted); font: 12px ui-monospace, Menlo, monospace; margin: 6px 0 14px; }}
  .kw {{ font-weight: 700; color: #8250df; margin-right: 4px; }}
  .tag {{ font: 12px ui-monospace, Menlo, monospace; color: var(--muted); background: var(--soft);
          border: 1px solid var(--line); border-radius: 6px; padding: 0 6px; margin-left: 4px; }}
  .background {{ background: var(--soft); border-radius: 8px; padding: 4px 14px; }}
  .background h3 {{ font-size: 15px; margin: 8px 0 0; }}
  h3.rule {{ font-size: 17px; margin: 26px 0 8px; padding: 6px 12px; background: #fbefff;
             border-radius: 8px; }}
  .scenario {{ border-left: 4px solid var(--line); padding: 2px 0 2px 14px; margin: 16px 0; }}
  .scenario.passed {{ border-color: var(--ok); }} .scenario.failed {{ border-color: var(--bad); }}
  .scenario.skipped {{ border-color: var(--skip); }}
  .scenario h4 {{ font-size: 16px; margin: 4px 0; }}
  .scenario .mark {{ display:inline-block; width: 20px; }}
  .scenario.passed .mark {{ color: var(--ok); }} .scenario.failed .mark {{ color: var(--bad); }}
  ul.steps {{ list-style: none; padding-left: 20px; margin: 4px 0; }}
  ul.steps li {{ padding: 1px 0; }}
  ul.steps li.failed {{ color: var(--bad); }} ul.steps li.skipped {{ color: var(--skip); }}
  .time {{ float: right; color: var(--muted); font-size: 12px; }}
  pre {{ background: #fff5f5; border: 1px solid #ffcecb; padding: 8px; overflow-x: auto;
         font-size: 12px; white-space: pre-wrap; }}
  .param {{ color: #0550ae; font-weight: 600; }}
  table.examples {{ border-collapse: collapse; margin: 6px 0 4px 20px; font-size: 14px; }}
  table.examples th {{ text-align: left; color: var(--muted); font-weight: 600;
                       border-bottom: 1px solid var(--line); padding: 4px 10px; }}
  table.examples td {{ border-bottom: 1px solid #eaeef2; padding: 4px 10px; }}
  table.examples tr.passed td.mark {{ color: var(--ok); }}
  table.examples tr.failed td {{ color: var(--bad); }}
  table.examples tr.skipped td {{ color: var(--skip); }}
</style></head>
<body><main>
<header><h1>{title}</h1>
<div class="meta">Generated {generated} from one run of the acceptance suite: {run} scenarios.</div>
{summary}</header>
<nav><ul>{toc}</ul></nav>
{body}
</main></body></html>
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trace_harness.living_docs",
        description="Render pytest-bdd's cucumber JSON as one readable HTML page.",
    )
    parser.add_argument("cucumber_json", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="where the feature files' paths start"
    )
    args = parser.parse_args(argv)
    features = json.loads(args.cucumber_json.read_text(encoding="utf-8"))
    if not features:
        print(
            f"{args.cucumber_json} holds no features: run the suite without xdist "
            "(pytest-bdd 9 writes an empty report under -n).",
            file=sys.stderr,
        )
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(features, args.root, generated=datetime.now(UTC)), "utf-8")
    print(f"Wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
