"""The living documentation page: features, background, rules, outlines as tables, a
failing step with its error, and the regressions kept out, rendered from the feature
files' syntax tree and the run's cucumber JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.living_docs import main, render

FEATURE = """@integration
Feature: Things
  Said plainly.

  Background:
    Given a world

  @regression
  Scenario: Plain
    When it runs
    Then it works

  Rule: Kept out

    Scenario Outline: Many
      When it gets <input>
      Then it says <output>

      Examples:
        | input | output |
        | 1     | one    |
        | 2     | two    |
"""


def step(keyword: str, name: str, status: str = "passed", error: str | None = None) -> dict:
    result = {"status": status, "duration": 1_000_000}
    if error:
        result["error_message"] = error
    return {"keyword": keyword, "name": name, "result": result}


def element(name: str, line: int, keyword: str, steps: list[dict]) -> dict:
    return {"keyword": keyword, "name": name, "line": line, "tags": [], "steps": steps}


def rendered(folder: Path, **options: Any) -> str:
    """The page for ``cucumber()``'s run of FEATURE, written in ``folder``."""
    (folder / "things.feature").write_text(FEATURE)
    return render(cucumber(), folder, generated=datetime(2026, 1, 2, tzinfo=UTC), **options)


def section(page: str, title: str) -> str:
    return page.split(f"<h2>{title}</h2>", 1)[1].split("</section>", 1)[0]


def cucumber() -> list[dict]:
    background = step("Given", "a world")
    return [
        {
            "keyword": "Feature",
            "name": "Things",
            "uri": "things.feature",
            "description": "Said plainly.",
            "tags": [{"name": "integration"}],
            "elements": [
                element(
                    "Plain",
                    9,
                    "Scenario",
                    [background, step("When", "it runs"), step("Then", "it works")],
                ),
                element(
                    "Many",
                    15,
                    "Scenario Outline",
                    [background, step("When", "it gets 1"), step("Then", "it says one")],
                ),
                element(
                    "Many",
                    15,
                    "Scenario Outline",
                    [
                        background,
                        step("When", "it gets 2"),
                        step("Then", "it says two", "failed", "AssertionError: said 'deux'"),
                    ],
                ),
            ],
        }
    ]


def test_the_page_reads_like_the_feature_file(tmp_path: Path) -> None:
    page = rendered(tmp_path)

    assert page.count("a world") == 1  # the background, once
    for shown in (
        "2026-01-02 00:00 UTC",
        '<span class="pill passed">2 passed</span>',
        '<span class="pill failed">1 failed</span>',
        '<span class="kw">Rule</span> Kept out',
        '<span class="param">&lt;input&gt;</span>',
        "<td>1</td><td>one</td>",
        '<tr class="failed">',
        "<pre>2 | two: AssertionError: said &#x27;deux&#x27;</pre>",
    ):
        assert shown in page


def test_the_regressions_kept_out_are_listed_with_their_results(tmp_path: Path) -> None:
    listed = section(rendered(tmp_path), "Regressions kept out")
    assert (
        '<li class="passed"><span class="mark">✓</span><a href="#feature-0-0">Plain</a>' in listed
    )
    assert "Many" not in listed


def test_a_failing_step_shows_its_error(tmp_path: Path) -> None:
    (tmp_path / "things.feature").write_text(FEATURE)
    data = cucumber()
    data[0]["elements"] = data[0]["elements"][:1]
    data[0]["elements"][0]["steps"][2] = step("Then", "it works", "failed", "boom: 42 != 43")
    page = render(data, tmp_path, generated=datetime.now(UTC))
    assert '<div class="scenario failed" id="feature-0-0">' in page
    assert "<pre>boom: 42 != 43</pre>" in page


def test_an_empty_report_is_refused_with_the_reason(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "cucumber.json"
    empty.write_text("[]")
    assert main([str(empty), str(tmp_path / "out.html")]) == 1
    assert "without xdist" in capsys.readouterr().err
    assert not (tmp_path / "out.html").exists()


def test_the_command_writes_the_page(tmp_path: Path) -> None:
    source = tmp_path / "cucumber.json"
    source.write_text(json.dumps(cucumber()))
    (tmp_path / "things.feature").write_text(FEATURE)
    out = tmp_path / "docs" / "living-docs.html"
    assert main([str(source), str(out), "--root", str(tmp_path)]) == 0
    assert out.read_text().startswith("<!doctype html>")


JUDGED = {
    "implementations": {"CLI": "node <their>/bgagent.js, as a process of its own"},
    "verdict": "does not conform",
    "contract": {"passed": 1, "failed": 1, "not_applicable": 2},
    "extras": {"passed": 1, "failed": 1, "not_applicable": 0},
    "scenarios": {"ran": 4, "passed": 2},
    "failed": [
        {
            "feature": "Things",
            "scenario": "Many",
            "example": "2 | two",
            "step": "Then it says two",
            "kind": "wording",
            "detail": "the CLI said 'deux'",
            "said": ["IAM: <role> is not allowed s3:ListBucket"],
            "contract": True,
        },
        {
            "feature": "Things",
            "scenario": "Extra",
            "example": "",
            "step": "Then it checks",
            "kind": "behaviour",
            "detail": "no check",
            "said": [],
            "contract": False,
        },
    ],
    "not_applicable": [{"scenario": "Things: Slow", "reason": "no <deadline> setting"}],
    "missing_from_phrasebook": ["it says <three>"],
}


def test_the_page_names_what_was_judged_and_where_each_failure_differed(
    tmp_path: Path,
) -> None:
    judged = section(rendered(tmp_path, judged=JUDGED), "What was judged")
    assert "<dt>CLI</dt><dd>node &lt;their&gt;/bgagent.js, as a process of its own</dd>" in judged
    assert "4 scenarios ran: 2 passed, 2 failed." in judged
    assert (
        "<b>The round trip's contract: does not conform</b> (1 passed, 1 failed, "
        "2 not applicable). This project's extras: 1 passed, 1 failed, 0 not applicable."
    ) in judged
    assert "<b>Things: Many</b> [2 | two]" in judged
    assert '<div class="said">IAM: &lt;role&gt; is not allowed s3:ListBucket</div>' in judged
    assert '<span class="kind">extra</span> <b>Things: Extra</b>' in judged
    assert "<li>Things: Slow: no &lt;deadline&gt; setting</li>" in judged
    assert '<div class="step">Then it says two</div>' in judged
    assert '<span class="kind">wording</span>: the CLI said &#x27;deux&#x27;' in judged
    assert "<li>it says &lt;three&gt;</li>" in judged


def test_without_a_conformance_report_nothing_is_said_of_what_was_judged(tmp_path: Path) -> None:
    assert "What was judged" not in rendered(tmp_path)


def test_the_command_reads_the_conformance_report(tmp_path: Path) -> None:
    source, judged = tmp_path / "cucumber.json", tmp_path / "conformance.json"
    source.write_text(json.dumps(cucumber()))
    judged.write_text(json.dumps(JUDGED))
    (tmp_path / "things.feature").write_text(FEATURE)
    out = tmp_path / "living-docs.html"
    assert main([str(source), str(out), "--root", str(tmp_path), "--conformance", str(judged)]) == 0
    assert "<h2>What was judged</h2>" in out.read_text()
