"""The site builds with warnings as errors, needs no network, and reads in a real browser."""

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from browser import chromium

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("DLCOURSE_SCREENSHOTS", ROOT / "_build" / "screenshots"))
CHAPTER_PAGES = sorted(str(p.relative_to(ROOT).with_suffix("")) for p in (ROOT / "chapters").rglob("*.ipynb"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", str(ROOT), "--path-output", str(out), "--warningiserror",
                           "--nitpick", "--keep-going"], capture_output=True, text=True)
    assert proc.returncode == 0, f"jupyter-book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out / "_build" / "html"


def test_every_page_of_the_toc_is_built(site):
    for name in re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text()):
        assert (site / f"{name}.html").is_file(), name


def test_pages_load_nothing_from_the_network(site):
    """Scripts, stylesheets and images are bundled: math and figures render offline."""
    remote = re.compile(r"^(https?:)?//")
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        urls = re.findall(r'<(?:script|img)\b[^>]*\bsrc="([^"]+)"', html)
        urls += [re.search(r'href="([^"]+)"', tag).group(1) for tag in re.findall(r"<link\b[^>]*>", html)
                 if re.search(r'rel="(stylesheet|preload|modulepreload)"', tag) and 'href="' in tag]
        assert not [u for u in urls if remote.match(u)], f"{page.relative_to(site)} loads remote assets"
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_no_page_shows_a_progress_bar_stuck_at_zero(site):
    """A saved widget bar reads as "0%" for ever on a static page; outputs must hold the final state."""
    stuck = re.compile(r"(?<![\d.])0%\||\b0it \[")
    for page in site.rglob("*.html"):
        text = re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8"))
        match = stuck.search(text)
        assert not match, (f"{page.relative_to(site)} shows a progress bar that never moved: "
                           f"{text[max(0, match.start() - 40):match.end() + 40]!r}")


def test_launch_and_download_buttons_point_at_the_repository(site):
    page = (site / "labs" / "lab01_deep_networks.html").read_text(encoding="utf-8")
    assert "colab.research.google.com/github/dl-applications/course/blob/main/labs/lab01_deep_networks.ipynb" in page
    assert "mybinder.org" in page and "_sources/labs/lab01_deep_networks.ipynb" in page


@pytest.fixture(scope="module")
def browser(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = chromium()
    try:
        yield driver, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        driver.quit()
        server.shutdown()


PAGE_STATE = """
const imgs = [...document.querySelectorAll('article.bd-article img')];  // figures, not header icons
const text = document.querySelector('main').innerText;
return {math: document.querySelectorAll('main mjx-container').length,
        pending: document.querySelectorAll('main .math:not(:has(mjx-container))').length,
        images: imgs.length, broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
        raw: /\\$\\$|\\\\\\(|\\\\begin\\{/.test(text),
        note: [...document.querySelectorAll('main .cell_output')].filter(
                 o => o.innerText.includes('Interactive controls')).map(o => o.querySelector('img') !== null)};
"""


def _load(driver, url):
    """Open ``url``, wait for MathJax (if the page has math) to finish, return the page's state."""
    driver.get(url)
    driver.set_script_timeout(30)
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (!document.querySelector('main .math')) { done(true); return; }"
        "const wait = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)"
        "  ? MathJax.startup.promise.then(() => done(true)) : setTimeout(wait, 100);"
        "wait();")
    return driver.execute_script(PAGE_STATE)


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_chapter_pages_show_typeset_math_figures_and_widget_fallbacks(browser, page):
    driver, base = browser
    state = _load(driver, f"{base}/{page}.html")
    assert state["pending"] == 0 and not state["raw"], f"{page}: math left untypeset ({state})"
    if "ch00" not in page:
        assert state["math"] > 0, f"{page}: no typeset math"
        assert state["images"] > 0, f"{page}: no figure"
    assert state["broken"] == [], f"{page}: broken images {state['broken']}"
    assert all(state["note"]), f"{page}: a widget's static note has no default figure beside it"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("const img = document.querySelector('article.bd-article img');"
                          "if (img) img.scrollIntoView({block: 'center'});")
    assert driver.save_screenshot(str(SCREENSHOTS / f"{page.replace('/', '_')}.png"))


def test_gradient_flow_page_screenshot(browser):
    driver, base = browser
    state = _load(driver, f"{base}/chapters/ch01_deep_networks/03_vanishing_gradients.html")
    assert state["note"] and all(state["note"]), "the gradient-flow widget's default figure is missing"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(height, 16000))
    for name, script in [("ch01_03_top.png", "window.scrollTo(0, 0)"),
                         ("ch01_03_widget.png", "[...document.querySelectorAll('main .cell_output')].find("
                          "o => o.innerText.includes('Interactive controls')).scrollIntoView()")]:
        driver.set_window_size(1280, 1000)
        driver.execute_script(script)
        path = SCREENSHOTS / name
        assert driver.save_screenshot(str(path)) and path.stat().st_size > 20_000
