"""Open a clvlab HTML report in headless Chromium and check what a reader would see.

Reusable from any test (``from browser_util import check_report_in_browser``; pytest puts
``tests/`` on ``sys.path``)::

    browser = require_browser()           # skips, or fails when CI=true, if there is none
    result = check_report_in_browser(index_html, ["23,570"], tmp_path / "first_screen.png")

Uses Debian's ``chromium`` and ``chromium-driver`` packages (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; override with ``CLVLAB_CHROMIUM`` / ``CLVLAB_CHROMEDRIVER``).
The driver path is passed explicitly, so selenium-manager never runs (nothing is downloaded).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT_DIR_ENV = "CLVLAB_SCREENSHOT_DIR"

__all__ = ["BrowserUnavailable", "browser_paths", "check_report_in_browser", "require_browser", "screenshot_path"]


class BrowserUnavailable(RuntimeError):
    """No usable headless browser on this machine (the message says what is missing)."""


def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or raise :class:`BrowserUnavailable` saying what is missing."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the Python package selenium (pip install selenium)")
    browser = os.environ.get("CLVLAB_CHROMIUM", CHROMIUM)
    driver = os.environ.get("CLVLAB_CHROMEDRIVER", CHROMEDRIVER)
    if not (Path(browser).is_file() and os.access(browser, os.X_OK)):
        missing.append(f"Chromium at {browser} (apt-get install chromium)")
    if not (Path(driver).is_file() and os.access(driver, os.X_OK)):
        missing.append(f"chromedriver at {driver} (apt-get install chromium-driver)")
    if missing:
        raise BrowserUnavailable("no headless browser: missing " + "; ".join(missing))
    return browser, driver


def require_browser() -> tuple[str, str]:
    """In a test: the browser paths, else ``pytest.skip`` -- or ``pytest.fail`` when ``CI=true``."""
    import pytest

    try:
        return browser_paths()
    except BrowserUnavailable as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{err} -- CI must run the browser test (.ci/run installs chromium + chromium-driver)")
        pytest.skip(str(err))


def screenshot_path(default_dir: Path, name: str) -> Path:
    """Where to save a screenshot: ``$CLVLAB_SCREENSHOT_DIR/name`` if set (kept), else ``default_dir/name``."""
    keep = os.environ.get(SCREENSHOT_DIR_ENV)
    folder = Path(keep) if keep else Path(default_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


_PAGE_STATE_JS = """
const imgs = Array.from(document.images).map(i => ({
    src: i.getAttribute('src').slice(0, 120), complete: i.complete, naturalWidth: i.naturalWidth,
    naturalHeight: i.naturalHeight, shownWidth: i.getBoundingClientRect().width}));
const toc = Array.from(document.querySelectorAll('nav.toc a')).map(a => {
    const href = a.getAttribute('href') || '';
    return {href: href, text: a.textContent.trim(),
            target: href.startsWith('#') && document.getElementById(decodeURIComponent(href.slice(1))) !== null};
});
const resources = performance.getEntriesByType('resource').map(r => r.name);
const external = Array.from(document.querySelectorAll('link[href], script[src], img[src], iframe[src]'))
    .map(e => e.getAttribute('href') || e.getAttribute('src'))
    .filter(u => /^(https?:)?\\/\\//i.test(u));
const sections = Array.from(document.querySelectorAll('main section[id]')).map(s => s.id);
return {title: document.title, text: document.body.innerText, images: imgs, toc: toc, resources: resources,
        external: external, sections: sections, scripts: document.scripts.length,
        pageWidth: document.documentElement.scrollWidth, viewportWidth: window.innerWidth};
"""


def check_report_in_browser(
    html_path: str | os.PathLike,
    expected_texts: Sequence[str] = (),
    screenshot_path: str | os.PathLike | None = None,
    *,
    full_page_path: str | os.PathLike | None = None,
    window: tuple[int, int] = (1280, 900),
    timeout: float = 30.0,
    strict: bool = True,
) -> dict[str, Any]:
    """Open ``html_path`` in headless Chromium and check it as a reader would see it.

    Parameters
    ----------
    html_path : path
        The report (``index.html`` or the self-contained file).
    expected_texts : sequence of str
        Texts that must appear in the rendered page (e.g. the headline numbers).
    screenshot_path : path, optional
        Save a PNG of the first screen (``window`` sized) here.
    full_page_path : path, optional
        Save a PNG of the whole page here.
    window : (int, int)
        Browser window size in CSS pixels.
    timeout : float
        Seconds to wait for the page and its images.
    strict : bool
        Raise AssertionError listing every problem (default); False: only report them.

    Returns
    -------
    dict
        ``problems`` (list of str; empty when all is well), ``title``, ``text`` (the page's
        visible text), ``images`` (src, complete, naturalWidth, ...), ``toc`` (href, text,
        target exists), ``console`` (every browser log entry), ``console_errors`` (SEVERE
        ones), ``missing_texts``, ``external`` (references to other hosts), ``resources``
        (URLs the page loaded), ``sections`` (section ids), ``screenshot`` / ``full_page``
        (paths or None).

    Checks: every ``<img>`` loaded (``naturalWidth > 0``), no SEVERE console entry, every
    expected text present, every table-of-contents link points at an existing id, nothing
    loaded from another host (``file:`` and ``data:`` only), no horizontal overflow.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = browser_paths()
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(html_path)
    profile = tempfile.mkdtemp(prefix="clvlab-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--mute-audio",
        f"--window-size={window[0]},{window[1]}",
        f"--user-data-dir={profile}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(timeout)
        driver.get(html_path.as_uri())
        deadline = time.monotonic() + timeout
        while True:
            state = driver.execute_script(_PAGE_STATE_JS)
            ready = driver.execute_script("return document.readyState") == "complete"
            if ready and all(i["complete"] for i in state["images"]):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        console = driver.get_log("browser")
        shot = full = None
        if screenshot_path is not None:
            shot = Path(screenshot_path)
            shot.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(shot))
        if full_page_path is not None:
            import base64

            full = Path(full_page_path)
            full.parent.mkdir(parents=True, exist_ok=True)
            data = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            full.write_bytes(base64.b64decode(data["data"]))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    problems = []
    broken = [i for i in state["images"] if not (i["complete"] and i["naturalWidth"] > 0)]
    problems += [f"image not loaded: {i['src']}" for i in broken]
    errors = [e for e in console if e.get("level") == "SEVERE"]
    problems += [f"console error: {e.get('message')}" for e in errors]
    missing = [t for t in expected_texts if t not in state["text"]]
    problems += [f"text not on the page: {t!r}" for t in missing]
    problems += [
        f"table-of-contents link {t['href']!r} ({t['text']}) has no target" for t in state["toc"] if not t["target"]
    ]
    foreign = [u for u in state["resources"] if not u.startswith(("file:", "data:"))] + state["external"]
    problems += [f"external resource: {u}" for u in foreign]
    if state["pageWidth"] > state["viewportWidth"] + 1:
        problems.append(f"page overflows horizontally ({state['pageWidth']} px > {state['viewportWidth']} px)")
    result = dict(
        state,
        problems=problems,
        console=console,
        console_errors=errors,
        missing_texts=missing,
        external=foreign,
        screenshot=shot,
        full_page=full,
    )
    if strict and problems:
        raise AssertionError(f"{html_path}: " + "; ".join(problems))
    return result
