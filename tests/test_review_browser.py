"""The review page in a real browser (headless Chromium through selenium): the
totals, the side-by-side rows and the filters work, and flags exported from the
page re-translate exactly the flagged piece, with its note, through --retranslate.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package
(``.ci/run`` installs them): under CI a missing one fails the test, elsewhere it
skips with the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import browser as chromium
from pipeline.testing import ScriptedBackend, to_zh
from tests.reliability_support import invoke, use_scripted, wait_for
from tests.test_review import ECHOED, echo_one, page_data, rows


@pytest.fixture
def browser() -> Iterator[Any]:
    why = chromium.missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    with chromium.chromium() as driver:
        yield driver


def open_page(driver: Any, page: Path) -> None:
    driver.get(page.resolve().as_uri())
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready") == "1", 10)


def visible_files(driver: Any) -> list[str]:
    # Read in one script call: the list is redrawn as filters change.
    files: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#files li')].map((li) => li.dataset.source)"
    )
    return files


def test_review_page_in_chromium_flags_one_piece_and_retranslate_sends_only_it(
    sample: Path, monkeypatch: pytest.MonkeyPatch, browser: Any
) -> None:
    from selenium.webdriver.support.ui import Select

    backend = use_scripted(monkeypatch, ScriptedBackend(echo_one))
    assert invoke(sample, "--to", "zh", "--review", "review.html").code == 0
    data = page_data(Path("review.html"))
    open_page(browser, Path("review.html"))

    # Totals at the top, as the data says.
    for name in ("files", "pieces", "translated", "kept"):
        shown = browser.find_element("css selector", f'#totals [data-total="{name}"] b').text
        assert int(shown) == data["totals"][name], name
    assert data["totals"]["kept"] == 1

    # The first file with a problem opens: side by side, one row per piece.
    assert browser.find_element("css selector", "#files li.open").get_attribute("data-source") == (
        "notes/todo.txt"
    )
    todo = rows(data, "notes/todo.txt")
    trs = browser.find_elements("css selector", "#rows tr[data-state]")
    assert len([t for t in trs if t.get_attribute("data-state") != "verbatim"]) == len(todo)
    kept_tr = browser.find_element("css selector", '#rows tr[data-state="kept"]')
    cells = kept_tr.find_elements("css selector", "td")
    assert ECHOED in cells[1].text and ECHOED in cells[2].text
    assert "answer echoes the source" in cells[2].text  # the check that rejected it

    # Filters: pieces kept -> one file; a search -> only the files that match.
    Select(browser.find_element("id", "piece-state")).select_by_value("kept")
    assert visible_files(browser) == ["notes/todo.txt"]
    Select(browser.find_element("id", "piece-state")).select_by_value("")
    assert len(visible_files(browser)) == 4
    search = browser.find_element("id", "search")
    search.send_keys("environment variable")
    wait_for(lambda: visible_files(browser) == ["notes/deep/guide.markdown"], 5, "search")
    search.clear()
    search.send_keys(" ")  # an input event with an empty query
    wait_for(lambda: len(visible_files(browser)) == 4, 5, "search cleared")

    # Flag one piece with a note, export.
    browser.find_element("css selector", '#files li[data-source="notes/todo.txt"]').click()
    text = "Read the chapter about distributed systems before the meeting."
    (row,) = [r for r in todo if r[2] == text]
    tr = browser.find_element("css selector", f'#rows tr[data-key="{row[5]}"]')
    tr.find_element("css selector", "button.flag").click()
    note = "Systems means computer systems here."
    browser.find_element("css selector", f'#rows tr[data-key="{row[5]}"] input.note').send_keys(
        note
    )
    browser.find_element("id", "export-flags").click()
    exported = browser.execute_script("return document.getElementById('export-json').value")
    flags_file = Path("flags.json")
    flags_file.write_text(exported, "utf-8")
    assert [f["key"] for f in json.loads(exported)["flags"]] == [row[5]]

    # Back to the command line: exactly that piece is asked again, with the note.
    backend.requests.clear()
    out = invoke(sample, "--to", "zh", "--retranslate", flags_file)
    assert out.code == 0, out.stderr
    (request,) = backend.requests
    assert request.prompt.text == text
    assert request.prompt.guidance == note
    assert to_zh(text) in Path("output/zh/notes/todo.txt").read_text("utf-8")


def test_screenshot_of_the_sample(sample: Path, scripted: ScriptedBackend, browser: Any) -> None:
    """The page renders with content (and the README's picture is made this way)."""
    assert invoke(sample, "--to", "zh", "--review", "review.html").code == 0
    open_page(browser, Path("review.html"))
    png = Path("shot.png")
    assert browser.save_screenshot(str(png))
    assert png.stat().st_size > 10_000
    assert browser.get_log("browser") == []  # no script error
