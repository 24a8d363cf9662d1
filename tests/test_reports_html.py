"""The HTML report in a real browser: headless Chromium loads the file, with no
name resolution at all, and the DOM it built must hold every dataset and every
copy state in the right grid cell; a screenshot shows the states' colours; the
network log shows the page asked for nothing."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from browser import load, screenshot
from conftest import Lab
from reportlab import ODD, SCENARIOS, run
from threetwoone.pathnames import display
from threetwoone.reports.html import COLOURS

REPO = Path(__file__).parent.parent


class Grid(HTMLParser):
    """What a reader sees: the grid's location columns and, per dataset row, its
    cells as (class, text); the section headings; the history chart's bars;
    and every attribute that could make the page load something."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.locations: list[str] = []
        self.rows: dict[str, list[tuple[str, str]]] = {}
        self.headings: list[str] = []
        self.bars: list[str] = []
        self.urls: list[str] = []
        self._part = ""  # thead | tbody of the grid, else ""
        self._cell: tuple[str, str, list[str]] | None = None  # tag, class, text
        self._row: list[tuple[str, str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.urls += [v for k, v in found.items()
                      if k in ("src", "href", "srcset", "action", "xlink:href", "data",
                               "poster") and not v.startswith("#")]
        if tag == "table" and found.get("class") == "grid":
            self._part = "table"
        elif tag in ("thead", "tbody") and self._part:
            self._part = tag
        elif tag == "tr" and self._part == "tbody":
            self._row = []
        elif (tag in ("th", "td") and self._part) or tag == "h3":
            self._cell = (tag, found.get("class", ""), [])
        elif tag == "br" and self._cell and self._part == "thead":
            self.locations.append("".join(self._cell[2]).strip())
            self._cell = None
        elif tag == "rect":
            self.bars.append(found.get("class", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._part = ""
        elif tag == "tr" and self._row:
            name = self._row[0][1]
            self.rows[name] = self._row[1:]
            self._row = None
        elif self._cell and tag == self._cell[0]:
            _tag, css, text = self._cell
            if tag == "h3":
                self.headings.append("".join(text).strip())
            elif self._row is not None:
                self._row.append((css, "".join(text).strip()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell:
            self._cell[2].append(data)


def grid(dom: str) -> Grid:
    parsed = Grid()
    parsed.feed(dom)
    return parsed


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chromium_shows_every_dataset_and_state(lab: Lab, tmp_path: Path,
                                                scenario: str) -> None:
    page = tmp_path / "report.html"
    run(lab, scenario, "--report", f"html:{page}", "--report", f"json:{tmp_path}/r.json")
    loaded = load(page)
    assert loaded.requests == []
    shown = grid(loaded.dom)
    assert shown.urls == []
    if SCENARIOS[scenario] >= 4:
        assert f"<h1>threetwoone audit: ERROR (exit {SCENARIOS[scenario]})</h1>" in loaded.dom
        assert shown.rows == {}
        return
    import json
    report = json.loads((tmp_path / "r.json").read_text())
    assert list(shown.rows) == [d["name"] for d in report["datasets"]]
    for dataset in report["datasets"]:
        cells = shown.rows[dataset["name"]]
        # policy, status, counted, then one cell per location
        assert cells[0][1] == dataset["policy"]
        assert cells[1][1] == dataset["status"]
        assert cells[2][1] == str(dataset["counts"]["copies"])
        by_location = dict(zip(shown.locations, cells[3:], strict=True))
        for copy in dataset["copies"]:
            css, text = by_location[copy["location"]]
            assert copy["state"] in text.split(", ")
            assert css.startswith("state ")
    # Every run in the catalog, this one included, is a bar in the history chart.
    assert len(shown.bars) >= 1


@pytest.mark.slow
def test_mixed_grid_sections_and_history(lab: Lab, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    run(lab, "mixed", "--report", f"html:{page}")
    shown = grid(load(page).dom)
    assert shown.locations == ["nas", "tape", "remote", "usb"]
    assert shown.rows["bad"][4] == ("state corrupt", "corrupt")  # tape
    assert shown.rows["bad"][5] == ("state missing", "intact, missing")  # the worse colours it
    assert shown.rows[ODD][6] == ("state unreachable", "unreachable")
    assert shown.rows["good"][6] == ("none", "\u2013")  # no copy there
    assert shown.headings == ["bad fail", f"{ODD} unknown"]  # the odd name, as text
    # Two runs, oldest first: the first audit (3 pass), then this one.
    assert shown.bars == ["pass", "pass", "unknown", "fail"]


@pytest.mark.slow
def test_screenshot_is_coloured_by_state(lab: Lab, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    run(lab, "mixed", "--report", f"html:{page}")
    png = tmp_path / "report.png"
    assert screenshot(page, png) == []
    image = Image.open(png).convert("RGB")
    assert image.size == (1100, 900)
    colours = {colour for _count, colour in image.getcolors(maxcolors=1 << 20) or []}
    for state in ("intact", "corrupt", "missing", "unreachable"):
        rgb = tuple(int(COLOURS[state][i:i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, state


@pytest.mark.slow
def test_network_check_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "hostile.html"
    page.write_text('<img src="http://198.51.100.7/x.png"><p>hello</p>')
    assert load(page).requests == ["http://198.51.100.7/x.png"]


@pytest.mark.slow
def test_hostile_names_stay_text(lab: Lab, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    run(lab, "mixed", "--report", f"html:{page}")
    dom = load(page).dom
    assert "<b>&amp;amp;</b>" not in dom and "&lt;b&gt;&amp;amp;&lt;/b&gt;" in dom
    assert ODD in grid(dom).rows
    assert f"usb:{display(ODD)}" in dom.replace("&lt;", "<").replace("&gt;", ">").replace(
        "&amp;", "&").replace("&quot;", '"')


@pytest.mark.slow
def test_readme_screenshot_script(tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    subprocess.run([sys.executable, str(REPO / "scripts" / "report_screenshot.py"), str(png)],
                   check=True, timeout=300, capture_output=True)
    assert Image.open(png).size == (1100, 900)
