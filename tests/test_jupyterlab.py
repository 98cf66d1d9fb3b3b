"""The widgets and the lab checks as a student meets them: JupyterLab in headless Chromium.

A JupyterLab server on loopback serves copies of the widget notebooks and of lab 1. For each
widget the test runs the notebook ("Run All"), changes every control and waits for the
figure to change, saves, reloads the page, and changes every control again. It types input
the attention widget refuses and checks that the widget says so, and it runs a lab check on a
wrong answer and on an unsolved stub. Screenshots and a table of what changed (with redraw
times) go to ``_build/screenshots/jupyterlab/``.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import chromium

ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("DLCOURSE_SCREENSHOTS", ROOT / "_build" / "screenshots")) / "jupyterlab"
WIDGETS = {  # widget -> its notebook
    "gradient flow": "chapters/ch01_deep_networks/03_vanishing_gradients.ipynb",
    "attention map": "chapters/ch02_rnn_attention/05_attention.ipynb",
    "search curves": "chapters/ch03_methodology/02_hyperparameter_search.ipynb",
}
LAB = "labs/lab01_deep_networks.ipynb"
WRONG_FORWARD = '''def forward(Us, X, taus):
    """Eq. 4.5 on a minibatch -- a wrong answer: the bias column is left out."""
    Z = X
    for U, tau in zip(Us, taus):
        Z = tau(Z @ U[:, 1:].T)
    return Z
'''
RUN_SECONDS, REDRAW_SECONDS = 300, 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over copies of the notebooks; yields (base URL, token, root folder)."""
    root = tmp_path_factory.mktemp("lab")
    for rel in [*WIDGETS.values(), LAB]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, root / rel)
    lab_nb = json.loads((root / LAB).read_text())
    stub = next(c for c in lab_nb["cells"] if "".join(c["source"]).startswith("def forward("))
    stub["source"] = WRONG_FORWARD.splitlines(keepends=True)
    (root / LAB).write_text(json.dumps(lab_nb))
    home = tmp_path_factory.mktemp("jupyter")
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    port, token = _free_port(), secrets.token_hex(16)
    log = open(home / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.news_url=None", *(["--allow-root"] if os.geteuid() == 0 else [])], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (home / "server.log").read_text()[-3000:]
                time.sleep(0.1)
        yield base, token, root
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    driver = chromium(window="1400,1100")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.json"):
        old.unlink()
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float, what: str, *args):
    """Poll ``script`` (JavaScript returning a value) until it is truthy; return that value."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


# The open notebook (one at a time here), found among the main area's tabs: the current tab may be a launcher
# that JupyterLab opens, with a delay, when the last tab closes.
PANEL = """const panel = window.jupyterapp && [...window.jupyterapp.shell.widgets('main')].find(
    w => w.content && w.sessionContext && w.context);"""
KERNEL_IDLE = PANEL + """
return !!(panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel
          && panel.sessionContext.session.kernel.status === 'idle' && panel.content && panel.content.widgets.length);"""
ALL_RAN = PANEL + """
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
const running = [...panel.node.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));
const error = panel.node.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
return !running && (cells.every(c => c.model.executionCount !== null) ? 'done' : (error ? 'stopped' : ''));"""
IMAGE_SRC = "const img = document.querySelector('.jp-Notebook img.widget-image'); return img ? img.src : '';"


def command(driver, name: str, args: dict | None = None):
    """Run a JupyterLab command, as a menu entry would; do not wait for it to finish."""
    driver.execute_script(PANEL + """
        if (panel) window.jupyterapp.shell.activateById(panel.id);  // commands act on the active tab
        window.jupyterapp.commands.execute(arguments[0], arguments[1] || {}); return null;""", name, args)


def open_notebook(driver, lab, rel: str):
    base, token, _ = lab
    driver.get(f"{base}/lab/tree/{rel}?reset&token={token}")
    wait_for(driver, KERNEL_IDLE, 120, f"{rel} to open with an idle kernel")


def scroll_to_cell(driver, text: str) -> int:
    """Bring the first cell whose source contains ``text`` into view (JupyterLab renders only cells near the view)."""
    index = driver.execute_script(PANEL + """
        const i = panel.content.widgets.findIndex(c => c.model.sharedModel.getSource().includes(arguments[0]));
        if (i >= 0) { panel.content.activeCellIndex = i; panel.content.scrollToItem(i, 'center'); }
        return i;""", text)
    assert index >= 0, f"no cell contains {text!r}"
    time.sleep(0.5)
    return index


def run_all(driver, rel: str) -> float:
    command(driver, "notebook:clear-all-cell-outputs")
    start = time.perf_counter()
    command(driver, "notebook:run-all-cells")
    time.sleep(1)
    state = wait_for(driver, ALL_RAN, RUN_SECONDS, f"Run All of {rel}")
    return time.perf_counter() - start if state == "done" else -1.0


def widget_box(driver):
    """The box that holds the figure, and its controls (label -> element)."""
    from selenium.webdriver.common.by import By

    img = driver.find_element(By.CSS_SELECTOR, ".jp-Notebook img.widget-image")
    box = img.find_element(By.XPATH, "./ancestor::div[contains(@class, 'widget-vbox')][1]")
    controls = {}
    for el in box.find_elements(By.CSS_SELECTOR, ".widget-hbox > .widget-inline-hbox, .widget-hbox > .widget-checkbox"):
        label = el.find_element(By.CSS_SELECTOR, ".widget-label, label").text.strip() or el.text.strip()
        controls[label] = el
    return box, controls


def change(driver, el, text: str | None = None) -> str:
    """Change one control as a student would; return what was done."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    cls = el.get_attribute("class")
    if "widget-dropdown" in cls:
        select = Select(el.find_element(By.TAG_NAME, "select"))
        options = select.options
        now = next(i for i, o in enumerate(options) if o.is_selected())
        select.select_by_index((now + 1) % len(options))
        return f"chose {options[(now + 1) % len(options)].text!r}"
    if "widget-checkbox" in cls:
        el.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
        return "toggled"
    if "widget-slider" in cls:
        handle = el.find_element(By.CSS_SELECTOR, ".noUi-handle")
        now, top = float(handle.get_attribute("aria-valuenow")), float(handle.get_attribute("aria-valuemax"))
        handle.click()
        key = Keys.ARROW_RIGHT if now < top else Keys.ARROW_LEFT
        handle.send_keys(key)
        return f"moved from {now:g} ({'right' if key == Keys.ARROW_RIGHT else 'left'})"
    if "widget-text" in cls:
        box = el.find_element(By.CSS_SELECTOR, "input")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.BACKSPACE)
        box.send_keys(text or "", Keys.ENTER)
        return f"typed {text!r}"
    raise AssertionError(f"no way to change a control of class {cls}")


def exercise_controls(driver, name: str, texts: dict) -> list[dict]:
    """Change each control once; the figure must change each time."""
    rows, tried = [], set()
    _, controls = widget_box(driver)
    for label in [*controls, *controls]:  # a control disabled by another is tried again at the end
        _, controls = widget_box(driver)  # fresh elements: a redraw may have re-rendered some
        el = controls[label]
        if label in tried or el.find_elements("css selector", "select:disabled, input:disabled"):
            continue
        tried.add(label)
        before = driver.execute_script(IMAGE_SRC)
        start = time.perf_counter()
        done = change(driver, el, texts.get(label))
        src, deadline = None, time.perf_counter() + REDRAW_SECONDS
        while time.perf_counter() < deadline:
            src = driver.execute_script(IMAGE_SRC)
            if src and src != before:
                break
            time.sleep(0.05)
        rows.append({"control": label, "action": done, "changed": bool(src and src != before),
                     "seconds": round(time.perf_counter() - start, 2)})
        time.sleep(0.3)
    return rows


def message(driver) -> str:
    from selenium.webdriver.common.by import By

    box, _ = widget_box(driver)
    return box.find_element(By.CSS_SELECTOR, ".widget-html").text


def wait_message(driver, test, what: str) -> str:
    deadline = time.perf_counter() + REDRAW_SECONDS
    while time.perf_counter() < deadline:
        text = message(driver).strip()
        if test(text):
            return text
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; the widget says {text!r}")


def screenshot(driver, element, name: str) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    time.sleep(0.3)
    element.screenshot(str(SHOTS / name))


def save(driver) -> None:
    command(driver, "docmanager:save")
    wait_for(driver, PANEL + "return panel.context.model.dirty === false;", 60, "the notebook to be saved")


def close_all(driver) -> None:
    """Close every tab, as File > Close All does (answering Save if JupyterLab asks about unsaved changes)."""
    command(driver, "application:close-all")
    wait_for(driver, PANEL + """
        const save = document.querySelector('.jp-Dialog .jp-mod-accept');
        if (save) save.click();
        return !panel && !document.querySelector('.jp-Notebook');""", 60, "the notebook to close")


def shut_down(driver) -> None:
    driver.execute_script("return window.jupyterapp.serviceManager.sessions.shutdownAll();")


TYPED = {"or type your own": "March 3, 2021"}


@pytest.mark.parametrize("name", list(WIDGETS))
def test_every_control_redraws_before_and_after_a_reload(lab, browser, name):
    rel = WIDGETS[name]
    open_notebook(browser, lab, rel)
    scroll_to_cell(browser, "_widget(")
    # opened without having run here (not trusted yet), the notebook shows the saved figure and the note
    fallback = wait_for(browser, """
        const out = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')]
            .find(o => o.innerText.includes('Interactive controls'));
        const img = out && out.querySelector('img');
        return img && img.complete && img.naturalWidth > 0 && out.innerText.trim();""", 60,
                        f"{name}: the saved figure and note before the notebook runs")
    assert "when this cell runs in Jupyter or Colab" in fallback
    run_seconds = run_all(browser, rel)
    assert run_seconds > 0, f"Run All of {rel} stopped at an error"
    scroll_to_cell(browser, "_widget(")
    box, controls = widget_box(browser)
    assert len(controls) >= 3, f"{name}: controls found: {list(controls)}"
    screenshot(browser, box, f"{name.replace(' ', '_')}.png")
    before = exercise_controls(browser, name, TYPED)
    if name == "attention map":  # input the widget refuses, input outside the training data, then back
        _, controls = widget_box(browser)
        change(browser, controls["or type your own"], "hello!!")
        wait_message(browser, lambda m: "refused" in m, "the refusal of 'hello!!' to show in the widget")
        box, controls = widget_box(browser)
        assert "not in the vocabulary" in message(browser)
        assert not controls["example"].find_element("css selector", "select").get_attribute("disabled")
        screenshot(browser, box, "attention_refused_input.png")
        change(browser, controls["or type your own"], "hello")
        wait_message(browser, lambda m: "not a date" in m and "refused" not in m, "the note that 'hello' is not a date")
        screenshot(browser, widget_box(browser)[0], "attention_not_a_date.png")
        change(browser, widget_box(browser)[1]["or type your own"], "")
        wait_message(browser, lambda m: m == "", "the message to clear with the text box")
    save(browser)
    browser.refresh()
    wait_for(browser, KERNEL_IDLE, 120, f"{rel} to reopen with its running kernel")
    scroll_to_cell(browser, "_widget(")
    wait_for(browser, IMAGE_SRC, 60, "the widget to come back after the reload")
    after = exercise_controls(browser, name, TYPED)
    save(browser)  # close the notebook and open it again while its kernel runs
    close_all(browser)
    command(browser, "docmanager:open", {"path": rel})
    wait_for(browser, KERNEL_IDLE, 120, f"{rel} to open again with its running kernel")
    scroll_to_cell(browser, "_widget(")
    wait_for(browser, IMAGE_SRC, 60, "the widget to come back after reopening")
    reopened = exercise_controls(browser, name, {})
    shut_down(browser)
    report = {"widget": name, "notebook": rel, "run_all_seconds": round(run_seconds, 1),
              "before_reload": before, "after_reload": after, "after_reopening": reopened}
    (SHOTS / f"{name.replace(' ', '_')}.json").write_text(json.dumps(report, indent=1))
    write_table()
    for when, rows in [("before the reload", before), ("after the reload", after), ("after reopening", reopened)]:
        assert {r["control"] for r in rows} == set(controls), f"{name} {when}: controls tried {rows}"
        assert all(r["changed"] for r in rows), f"{name} {when}: a control did not redraw the figure: {rows}"


def write_table() -> None:
    """``report.md``: for each widget and control, whether the figure changed and how fast."""
    lines = ["| widget | control | after Run All | after a page reload | after closing and reopening |",
             "|---|---|---|---|---|"]
    for path in sorted(SHOTS.glob("*.json")):
        report = json.loads(path.read_text())
        after = {r["control"]: r for r in report["after_reload"]}
        reopened = {r["control"]: r for r in report.get("after_reopening", [])}
        for row in report["before_reload"]:
            cells = [f"{'yes' if r['changed'] else 'NO'}, {r['seconds']:.2f} s" if r else "not tried"
                     for r in (row, after.get(row["control"]), reopened.get(row["control"]))]
            lines.append(f"| {report['widget']} | {row['control']} | {' | '.join(cells)} |")
    (SHOTS / "report.md").write_text("\n".join(lines) + "\n")


def cell_output(driver, start: str):
    """The node and output text of the first cell whose source starts with ``start``."""
    index = driver.execute_script(PANEL + """
        return panel.content.widgets.findIndex(c => c.model.sharedModel.getSource().startsWith(arguments[0]));""", start)
    assert index >= 0, f"no cell starts with {start!r}"
    driver.execute_script(PANEL + "panel.content.scrollToItem(arguments[0], 'center');", index)
    time.sleep(0.5)
    node = driver.execute_script(PANEL + "return panel.content.widgets[arguments[0]].node;", index)
    text = driver.execute_script(PANEL + """
        const out = panel.content.widgets[arguments[0]].node.querySelector('.jp-OutputArea');
        return out ? out.innerText : '';""", index)
    return index, node, text


def test_lab_checks_show_a_short_message_to_the_student(lab, browser):
    open_notebook(browser, lab, LAB)
    assert run_all(browser, LAB) < 0  # Run All stops at the first failed check
    index, node, text = cell_output(browser, "check_forward(")
    assert "✘ Check failed" in text and "Traceback" not in text and "checks" not in text, text
    assert len(text.strip().splitlines()) <= 4, text
    screenshot(browser, node, "lab_check_failed.png")
    browser.execute_script(PANEL + "panel.content.activeCellIndex = arguments[0] + 1;", index)
    command(browser, "notebook:run-all-below")
    time.sleep(1)
    wait_for(browser, ALL_RAN, RUN_SECONDS, "the cells below to run")
    _, node, text = cell_output(browser, "check_deltas(")
    assert text.strip().startswith("… Exercise 2 is not done yet") and len(text.strip().splitlines()) == 1, text
    assert "Traceback" not in text
    screenshot(browser, node, "lab_exercise_not_done.png")
    shut_down(browser)
