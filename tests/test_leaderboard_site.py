"""The built leaderboard site in a real headless Chromium (Debian's chromium + chromium-driver via selenium):
sorting by a column header, the backbone filter, factor views, entry pages; a screenshot is kept."""

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from severe_bench.cli import cli
from severe_bench.leaderboard.bundle import write_bundle

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def site(leaderboard_runs, tmp_path_factory):
    """A board with the published entries and one accepted submission, built as a static site."""
    base = tmp_path_factory.mktemp("site")
    mp = pytest.MonkeyPatch()
    mp.setenv("SEVERE_TASKS_DIR", str(leaderboard_runs.tasks_dir))
    try:
        bundle = base / "entry.zip"
        write_bundle(leaderboard_runs.full, bundle, name="Scratch (test)", paper="https://arxiv.org/abs/2203.14221")
        db = base / "board.db"
        r = CliRunner().invoke(cli, ["leaderboard", "add", str(bundle), "--db", str(db)])
        assert r.exit_code == 0, r.output + repr(r.exception)
        r = CliRunner().invoke(cli, ["leaderboard", "build", "--db", str(db), "--out", str(base / "site")])
        assert r.exit_code == 0, r.output + repr(r.exception)
    finally:
        mp.undo()
    return base / "site"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("Debian chromium / chromium-driver not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="severe-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1440,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_site_files(site):
    board = json.loads((site / "board.json").read_text())
    names = {e["name"]: e for e in board["entries"]}
    assert names["TCLR"]["kind"] == "published" and names["TCLR"]["paper"].startswith("https://arxiv.org/abs/")
    mine = names["Scratch (test)"]
    assert mine["kind"] == "submitted" and mine["status"] == "partial"
    assert mine["results"][0]["protocol"]["official"] and len(mine["results"][0]["protocol"]["hash"]) == 16
    page = (site / mine["page"]).read_text()
    for fact in ("scratch", mine["results"][0]["protocol"]["hash"], "Checkpoint sha256", "Provenance of every result"):
        assert fact in page
    assert (site / "board.csv").read_text().startswith("method,provenance,")
    assert "Scratch (test)" in (site / "partial.csv").read_text()


def _visible_rows(driver, table="board"):
    return [tr.get_attribute("data-entry") for tr in driver.find_elements("css selector", f"#{table} tbody tr")
            if tr.is_displayed()]


def _column(board, task):
    return {e["slug"]: (e["cells"].get(task) or {}).get("mean") for e in board["entries"]}


def test_sort_filter_and_views_in_chromium(site, browser, keep_artifact):
    board = json.loads((site / "board.json").read_text())
    browser.get((site / "index.html").as_uri())
    rows = _visible_rows(browser)
    published = [e["slug"] for e in board["entries"] if e["kind"] == "published"]
    assert sorted(rows) == sorted(published) and len(rows) > 10

    # clicking SSv2 sorts by it, best first (missing values last); clicking again reverses
    ssv2 = _column(board, "ssv2")
    header = browser.find_element("css selector", '#board thead th[data-key="ssv2"]')
    header.click()
    by_ssv2 = _visible_rows(browser)
    assert by_ssv2 != rows
    values = [ssv2[s] for s in by_ssv2]
    assert values == sorted(values, reverse=True) and header.get_attribute("aria-sort") == "descending"
    header.click()
    assert [ssv2[s] for s in _visible_rows(browser)] == sorted(values)

    # a lower-is-better column sorts ascending first
    browser.find_element("css selector", '#board thead th[data-key="ucfrep"]').click()
    rc = [_column(board, "ucfrep")[s] for s in _visible_rows(browser)]
    assert rc == sorted(rc)

    # the backbone filter hides the other backbones' rows
    family = {e["slug"]: e["family"] for e in board["entries"]}
    browser.find_element("css selector", 'button[data-backbone="ViT"]').click()
    vit = _visible_rows(browser)
    assert vit and all(family[s] == "ViT" for s in vit) and len(vit) < len(rows)
    assert sorted(vit) == sorted(s for s in published if family[s] == "ViT")
    assert _visible_rows(browser, "partial") == []  # the R(2+1)D-18 submission is hidden too
    browser.find_element("css selector", 'button[data-backbone="R(2+1)D-18"]').click()
    assert all(family[s] == "R(2+1)D-18" for s in _visible_rows(browser)) and _visible_rows(browser, "partial")
    browser.find_element("css selector", 'button[data-backbone="all"]').click()
    assert len(_visible_rows(browser)) == len(published)

    # a factor view shows that factor's tasks and its mean/rank, and hides the others
    browser.find_element("css selector", 'button[data-view="Samples"]').click()
    shown = [th.get_attribute("data-key") for th in browser.find_elements("css selector", "#board thead th[data-key]")
             if th.is_displayed()]
    assert shown == ["method", "backbone", "ucf101_1k", "gym99_1k", "f-Samples-mean", "f-Samples-rank"]
    browser.find_element("css selector", '#board thead th[data-key="f-Samples-mean"]').click()
    top = _visible_rows(browser)[0]
    assert top == max(published, key=lambda s: (_column(board, "ucf101_1k")[s] + _column(board, "gym99_1k")[s]))
    browser.find_element("css selector", 'button[data-view="all"]').click()
    browser.find_element("css selector", '#board thead th[data-key="rank"]').click()

    # in a narrow window the table scrolls sideways, and the method column stays in view
    browser.set_window_size(800, 1000)
    box_left, cell_left, scrolled = browser.execute_script(
        "const box = document.querySelector('#board').closest('.tablebox'); box.scrollLeft = box.scrollWidth;"
        "const cell = document.querySelector('#board tbody td[data-key=method]');"
        "return [box.getBoundingClientRect().left, cell.getBoundingClientRect().left, box.scrollLeft];")
    assert scrolled > 0 and abs(cell_left - box_left) <= 2
    browser.execute_script("document.querySelectorAll('.tablebox').forEach(b => { b.scrollLeft = 0; });")

    # the page's whole height, kept for a person to look at
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1440, min(height + 40, 4000))
    shot = keep_artifact("leaderboard_index.png")
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000

    # an entry page opens from the table and shows its provenance
    browser.set_window_size(1440, 1000)
    browser.find_element("link text", "Scratch (test)").click()
    assert "Provenance of every result" in browser.page_source
    shot = keep_artifact("leaderboard_entry.png")
    assert browser.save_screenshot(str(shot))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_on_localhost(site):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "severe_bench", "leaderboard", "serve", str(site), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as resp:
                    page = resp.read().decode()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert re.search(r"<title>SEVERE Benchmark Leaderboard</title>", page)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/board.json", timeout=2) as resp:
            assert json.loads(resp.read())["schema"] == "severe-bench/leaderboard-site/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
