"""The Markdown report, rendered by GitHub's own Markdown library (cmark-gfm,
through ``cmarkgfm``) with raw HTML allowed, as a mail client might: the table
must have one row per dataset, names must come out exactly, and no name may
turn into markup."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from conftest import Lab
from reportlab import ODD, SCENARIOS, run
from threetwoone.pathnames import display
from threetwoone.reports.markdown import code, md


class Page(HTMLParser):
    """Tags seen, table rows as lists of cell texts, and code spans."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self.codes: list[str] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._code: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "code":
            self._code = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "code" and self._code is not None:
            self.codes.append("".join(self._code))
            self._code = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for sink in (self._cell, self._code):
            if sink is not None:
                sink.append(data)


def render(markdown: str) -> Page:
    html = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    page = Page()
    page.feed(html)
    return page


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_markdown_for_every_outcome(lab: Lab, tmp_path: Path, scenario: str) -> None:
    out = tmp_path / "summary.md"
    run(lab, scenario, "--report", f"markdown:{out}")
    page = render(out.read_text())
    code = SCENARIOS[scenario]
    heading = "".join(page.text).split("\n")[0]
    if code >= 4:
        assert heading == f"threetwoone audit: ERROR (exit {code})"
        assert page.codes  # the error, verbatim in a code block
        assert "table" not in page.tags
    else:
        verdict = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN", "mixed": "FAIL"}
        assert heading == f"threetwoone audit: {verdict[scenario]}"
        header, *rows = page.rows
        assert header == ["dataset", "policy", "status", "counted copies", "media",
                          "off-site", "copy states"]
        assert all(len(row) == 7 for row in rows)


def test_names_come_out_exactly_and_never_as_markup(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "summary.md"
    run(lab, "mixed", "--report", f"markdown:{out}")
    page = render(out.read_text())
    _header, *rows = page.rows
    assert [(r[0], r[2]) for r in rows] == [("good", "pass"), ("bad", "FAIL"),
                                            (ODD, "UNKNOWN")]
    assert rows[1][6] == "2 intact, 1 corrupt, 1 missing"
    assert "b" not in page.tags and "em" not in page.tags  # <b>, *x* stayed text
    assert f"usb:{display(ODD)}" in page.codes  # the unreachable copy, exactly
    assert "tape:bad" in page.codes and "sub/b.fastq" in page.codes
    assert "bad-gone" in "".join(page.text)
    assert "good:" not in "".join(page.text)  # passing, nothing to say


def test_quiet_markdown_lists_only_trouble(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "summary.md"
    run(lab, "pass", "-q", "--format", "markdown", "-o", str(out))
    assert out.read_text() == ""


@pytest.mark.parametrize("text", ["plain", "a|b", "`tick`", "``", "x ` y", " ", " a ",
                                  "<i>&amp;", "*_[x](y)_*", "back\\slash"])
def test_escaping_round_trips_through_cmark(text: str) -> None:
    page = render(f"| h |\n|---|\n| {md(text)} {code(text, in_table=True)} |\n")
    [_header, [cell]] = page.rows
    assert page.codes == [text]
    assert cell.startswith(text.strip())
    assert set(page.tags) <= {"table", "thead", "tbody", "tr", "th", "td", "code"}
