"""Living documentation: one self-contained HTML page from a suite run.

``python -m tools.living_docs build/cucumber.json build/living-docs.html``
reads pytest-bdd's cucumber JSON (``--cucumberjson``; not under xdist, where
pytest-bdd 9 writes an empty list) for the results, and each feature file's
syntax tree (the official Gherkin parser) for its structure: the feature's
description, its background, each rule and scenario with its steps and their
results, each outline with its examples tables, and the regressions the suite
keeps out (``@regression``). With ``--conformance`` (the suite's
``--conformance-report``), it also names the CLI, handler and phrasebook the run
judged, and where each failed scenario differed. No server, no script: open the file
in a browser.
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
from typing import Any, cast

from gherkin.parser import Parser

STATUS_MARK = {"passed": "✓", "failed": "✗", "skipped": "○", "undefined": "?"}
REGRESSION_TAG = "@regression"

Node = dict[str, Any]  # a node of the Gherkin syntax tree (gherkin-official)


def _element_status(element: Node) -> str:
    return _worst([step.get("result", {}).get("status", "undefined") for step in element["steps"]])


def _worst(statuses: list[str]) -> str:
    for worst in ("failed", "undefined", "skipped"):
        if worst in statuses:
            return worst
    return "passed" if statuses else "undefined"


def parse_feature(feature_file: Path) -> Node:
    """The feature file's syntax tree, from the official Gherkin parser."""
    document: Any = Parser().parse(feature_file.read_text(encoding="utf-8"))
    return cast(Node, document["feature"])


@dataclass
class Scenario:
    """A scenario of the syntax tree, with the results of its runs (one per example)."""

    node: Node
    rule: str | None
    runs: list[Node] = field(default_factory=list)  # cucumber elements, in file order

    @property
    def status(self) -> str:
        return _worst([_element_status(e) for e in self.runs])

    @property
    def tags(self) -> list[str]:
        return [tag["name"] for tag in self.node["tags"]]

    def regression_examples(self) -> list[str]:
        return [
            examples["name"]
            for examples in self.node["examples"]
            if REGRESSION_TAG in [tag["name"] for tag in examples["tags"]]
        ]


def _scenarios(feature: Node) -> tuple[Node | None, list[Scenario]]:
    background, scenarios = None, []
    for child in feature["children"]:
        if "background" in child:
            background = child["background"]
        elif "scenario" in child:
            scenarios.append(Scenario(child["scenario"], None))
        elif "rule" in child:
            rule = child["rule"]
            scenarios += [
                Scenario(c["scenario"], rule["name"]) for c in rule["children"] if "scenario" in c
            ]
    return background, scenarios


def render(
    features: list[Node], root: Path, *, generated: datetime, judged: Node | None = None
) -> str:
    """The page; ``judged``: the suite's conformance report (``--conformance-report``)."""
    totals = {"passed": 0, "failed": 0, "skipped": 0, "undefined": 0}
    body, toc, regressions = [], [], []
    for index, reported in enumerate(features):
        elements = reported.get("elements", [])
        for element in elements:
            totals[_element_status(element)] += 1
        feature = parse_feature(root / reported.get("uri", ""))
        background, scenarios = _scenarios(feature)
        by_line = {scenario.node["location"]["line"]: scenario for scenario in scenarios}
        for element in elements:
            if element["line"] in by_line:
                by_line[element["line"]].runs.append(element)
        anchor = f"feature-{index}"
        failed = sum(s.status == "failed" for s in scenarios)
        toc.append(
            f'<li><a href="#{anchor}">{escape(feature["name"])}</a> '
            f'<span class="count">{len(scenarios)} scenarios'
            f"{f', {failed} failing' if failed else ''}</span></li>"
        )
        skip = len(background["steps"]) if background else 0
        body.append(_feature_html(feature, reported, anchor, background, scenarios, skip))
        for number, scenario in enumerate(scenarios):
            target = f"{anchor}-{number}"
            if REGRESSION_TAG in scenario.tags:
                regressions.append((target, scenario.node["name"], scenario.status))
            regressions += [
                (target, f"{scenario.node['name']}: {name}", scenario.status)
                for name in scenario.regression_examples()
            ]
    run = sum(totals.values())
    summary = " ".join(
        f'<span class="pill {status}">{count} {status}</span>'
        for status, count in totals.items()
        if count
    )
    guarded = "".join(
        f'<li class="{status}"><span class="mark">{STATUS_MARK.get(status, "?")}</span>'
        f'<a href="#{target}">{escape(name)}</a></li>'
        for target, name, status in regressions
    )
    return _PAGE.format(
        title="The trace round trip: living documentation",
        generated=generated.strftime("%Y-%m-%d %H:%M UTC"),
        run=run,
        summary=summary,
        toc="\n".join(toc),
        regressions=(
            f'<section class="regressions"><h2>Regressions kept out</h2>'
            f"<p>Each of these reached users once; its scenario fails if it comes back.</p>"
            f"<ul>{guarded}</ul></section>"
            if regressions
            else ""
        ),
        judged=_judged_html(judged) if judged else "",
        body="\n".join(body),
    )


def _judged_html(judged: Node) -> str:
    """What the run judged, and where each failed scenario differed."""
    named = "".join(
        f"<dt>{escape(part)}</dt><dd>{escape(name)}</dd>"
        for part, name in judged["implementations"].items()
    )
    failed = "".join(
        f'<li class="failed"><span class="mark">{STATUS_MARK["failed"]}</span>'
        + ("" if d.get("contract", True) else '<span class="kind">extra</span> ')
        + f"<b>{escape(': '.join(p for p in (d['feature'], d['scenario']) if p))}</b>"
        + (f" [{escape(d['example'])}]" if d["example"] else "")
        + f'<div class="step">{escape(d["step"])}</div>'
        f'<div><span class="kind">{escape(d["kind"])}</span>: {escape(d["detail"])}</div>'
        + "".join(f'<div class="said">{escape(said)}</div>' for said in d.get("said", []))
        + "</li>"
        for d in judged["failed"]
    )
    missing = "".join(f"<li>{escape(m)}</li>" for m in judged["missing_from_phrasebook"])
    not_applicable = "".join(
        f"<li>{escape(n['scenario'])}: {escape(n['reason'])}</li>"
        for n in judged.get("not_applicable", [])
    )
    ran = judged["scenarios"]
    verdict = ""
    if "verdict" in judged:
        contract, extras = judged["contract"], judged["extras"]
        verdict = (
            f"<p><b>The round trip's contract: {escape(judged['verdict'])}</b> "
            f"({contract['passed']} passed, {contract['failed']} failed, "
            f"{contract['not_applicable']} not applicable). This project's extras: "
            f"{extras['passed']} passed, {extras['failed']} failed, "
            f"{extras['not_applicable']} not applicable.</p>"
        )
    return (
        '<section class="judged"><h2>What was judged</h2>'
        f"<dl>{named}</dl>"
        f"{verdict}"
        f"<p>{ran['ran']} scenarios ran: {ran['passed']} passed, {len(judged['failed'])} failed."
        "</p>"
        + (f'<ul class="differences">{failed}</ul>' if failed else "")
        + (f"<p>Not applicable:</p><ul>{not_applicable}</ul>" if not_applicable else "")
        + (
            f"<p>The phrasebook has no entry for these messages:</p><ul>{missing}</ul>"
            if missing
            else ""
        )
        + "</section>"
    )


def _feature_html(
    feature: Node,
    reported: Node,
    anchor: str,
    background: Node | None,
    scenarios: list[Scenario],
    skip: int,
) -> str:
    tags = " ".join(f'<span class="tag">{escape(t["name"])}</span>' for t in feature["tags"])
    description = "".join(
        f"<p>{escape(' '.join(line.strip() for line in paragraph.splitlines()))}</p>"
        for paragraph in feature["description"].split("\n\n")
        if paragraph.strip()
    )
    parts = [
        f'<section class="feature" id="{anchor}">',
        f'<h2><span class="kw">Feature</span> {escape(feature["name"])} {tags}</h2>',
        f'<div class="description">{description}</div>',
        f'<div class="uri">{escape(reported.get("uri", ""))}</div>',
    ]
    if background:
        parts.append('<div class="background"><h3><span class="kw">Background</span></h3>')
        parts.append(_written_steps_html(background["steps"]))
        parts.append("</div>")
    current_rule = None
    for number, scenario in enumerate(scenarios):
        if scenario.rule != current_rule and scenario.rule is not None:
            parts.append(
                f'<h3 class="rule"><span class="kw">Rule</span> {escape(scenario.rule)}</h3>'
            )
        current_rule = scenario.rule
        parts.append(_scenario_html(scenario, f"{anchor}-{number}", skip))
    parts.append("</section>")
    return "\n".join(parts)


def _scenario_html(scenario: Scenario, anchor: str, skip: int) -> str:
    node = scenario.node
    tags = " ".join(f'<span class="tag">{escape(t)}</span>' for t in scenario.tags)
    head = (
        f'<div class="scenario {scenario.status}" id="{anchor}">'
        f'<h4><span class="mark">{STATUS_MARK.get(scenario.status, "?")}</span>'
        f'<span class="kw">{escape(node["keyword"])}</span> {escape(node["name"])} {tags}</h4>'
    )
    if not node["examples"]:
        runs = scenario.runs
        steps = _steps_html(runs[0]["steps"][skip:]) if runs else _written_steps_html(node["steps"])
        return head + steps + "</div>"
    return head + _outline_html(scenario) + "</div>"


def _outline_html(scenario: Scenario) -> str:
    """The outline as written, then each examples table, each row with its result."""
    steps = "".join(
        f'<li class="plain"><span class="kw">{escape(step["keyword"].strip())}</span> '
        + re.sub(r"&lt;(\w+)&gt;", r'<span class="param">&lt;\1&gt;</span>', escape(step["text"]))
        + "</li>"
        for step in scenario.node["steps"]
    )
    runs = iter(scenario.runs)
    tables, errors = [], []
    for examples in scenario.node["examples"]:
        header = "".join(
            f"<th>{escape(cell['value'])}</th>" for cell in examples["tableHeader"]["cells"]
        )
        tags = " ".join(f'<span class="tag">{escape(t["name"])}</span>' for t in examples["tags"])
        title = escape(examples["name"])
        rows = []
        for row in examples["tableBody"]:
            cells = [cell["value"] for cell in row["cells"]]
            element = next(runs, None)
            status = _element_status(element) if element else "undefined"
            rows.append(
                f'<tr class="{status}"><td class="mark">{STATUS_MARK.get(status, "?")}</td>'
                + "".join(f"<td>{escape(cell)}</td>" for cell in cells)
                + "</tr>"
            )
            errors += [
                f"<pre>{escape(' | '.join(cells))}: {escape(step['result']['error_message'])}</pre>"
                for step in (element or {}).get("steps", [])
                if step.get("result", {}).get("error_message")
            ]
        caption = f"<caption>{title} {tags}</caption>" if title or tags else ""
        tables.append(
            f'<table class="examples">{caption}<tr><th></th>{header}</tr>{"".join(rows)}</table>'
        )
    return f'<ul class="steps">{steps}</ul>' + "".join(tables) + "".join(errors)


def _written_steps_html(steps: list[Node]) -> str:
    items = "".join(
        f'<li class="plain"><span class="kw">{escape(step["keyword"].strip())}</span> '
        f"{escape(step['text'])}</li>"
        for step in steps
    )
    return f'<ul class="steps">{items}</ul>'


def _steps_html(steps: list[Node]) -> str:
    items = []
    for step in steps:
        result = step.get("result", {})
        status = result.get("status", "undefined")
        duration = result.get("duration", 0) / 1e9
        error = result.get("error_message")
        items.append(
            f'<li class="{status}"><span class="kw">{escape(step["keyword"])}</span> '
            f"{escape(step['name'])}"
            f'<span class="time">{duration * 1000:.0f} ms</span>'
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
  table.examples caption {{ text-align: left; color: var(--muted); padding: 4px 0; }}
  .regressions ul {{ list-style: none; padding-left: 8px; }}
  .regressions .mark {{ display:inline-block; width: 20px; }}
  .regressions li.passed .mark {{ color: var(--ok); }}
  .regressions li.failed .mark {{ color: var(--bad); }}
  table.examples {{ border-collapse: collapse; margin: 6px 0 4px 20px; font-size: 14px; }}
  table.examples th {{ text-align: left; color: var(--muted); font-weight: 600;
                       border-bottom: 1px solid var(--line); padding: 4px 10px; }}
  table.examples td {{ border-bottom: 1px solid #eaeef2; padding: 4px 10px; }}
  table.examples tr.passed td.mark {{ color: var(--ok); }}
  table.examples tr.failed td {{ color: var(--bad); }}
  table.examples tr.skipped td {{ color: var(--skip); }}
  .judged dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; }}
  .judged dt {{ font-weight: 600; }} .judged dd {{ margin: 0; }}
  .differences {{ list-style: none; padding-left: 8px; }}
  .differences li {{ margin: 8px 0; }} .differences .mark {{ color: var(--bad); width: 20px;
                                                            display: inline-block; }}
  .differences .step, .differences .kind {{ font-family: ui-monospace, Menlo, monospace;
                                           font-size: 13px; }}
  .differences .kind {{ font-weight: 700; color: var(--bad); }}
</style></head>
<body><main>
<header><h1>{title}</h1>
<div class="meta">Generated {generated} from one run of the acceptance suite: {run} scenarios.</div>
{summary}</header>
<nav><ul>{toc}</ul></nav>
{judged}
{regressions}
{body}
</main></body></html>
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.living_docs",
        description="Render pytest-bdd's cucumber JSON as one readable HTML page.",
    )
    parser.add_argument("cucumber_json", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="where the feature files' paths start"
    )
    parser.add_argument(
        "--conformance",
        type=Path,
        metavar="JSON",
        help="the suite's --conformance-report: what was judged, and how failures differed",
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
    judged = None
    if args.conformance is not None:
        judged = json.loads(args.conformance.read_text(encoding="utf-8"))
    page = render(features, args.root, generated=datetime.now(UTC), judged=judged)
    args.output.write_text(page, "utf-8")
    print(f"Wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
