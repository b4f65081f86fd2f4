"""Open every page of the built book in headless Chromium, as a reader would, and fail on what they would trip over.

    python .ci/browser_check.py [--html _build/html] [--screenshots _build/screenshots]

Checks, per page:

* **links**: every internal ``href`` points at a file of the build, and every ``#fragment`` at an
  element with that id (checked on the HTML files, so a link to a page that is never opened counts too);
* **images**: every ``<img>`` source exists in the build and has alt text that is not a file name,
  and in the browser every image has loaded (``naturalWidth > 0``);
* **math**: every math block of the page has been typeset by MathJax (one ``mjx-container`` per
  ``.math`` element), none contains a MathJax error (``mjx-merror``), and no TeX is left in the prose as
  text (a ``$`` or a control word such as ``\\alpha`` outside code and math: math the parser did not
  recognise, for example a ``$$`` block without blank lines around it inside a list item);
* **math width**: no typeset formula is wider than its column, or sticks out of it, with the window
  1280 px wide and again 400 px wide (a phone): a display equation that does not fit is cut off or
  scrolls sideways, so long equations must be broken into lines (``aligned``).  Every formula is
  measured, those in collapsed solutions and toggles too (they are opened first); the column is the
  nearest block element around the formula (its content box), and the formula's extent is that of its
  ``mjx-container`` and ``mjx-math`` boxes, whatever the page's CSS does with the overflow.  Each
  offender is reported with its width, the column's and the start of its TeX;
* **console**: the browser console has no error (``SEVERE``) entries;

and it saves a full-page screenshot of every page (PNG) for a person to look at.

The pages are served from ``127.0.0.1`` by a local HTTP server.  The book loads MathJax from its public
CDN; so that the check works without internet, the server rewrites that one URL to the same MathJax 3
served from the ``django-static-mathjax`` package when it is installed, and the report says so.
Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``) and
``pip install selenium==4.51.0 django-static-mathjax==3.2.2.1`` in the book's environment.
Exit status 0 when every page passes, 1 otherwise.

Exit status 2 (with the list of what is missing) when the browser, its driver, selenium or the local
MathJax is not installed.  ``tests/test_book_build.py`` builds the book with ``-W`` into a temporary
folder and runs this check on it; that test is skipped, naming what is missing, where the browser is not
available.
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import re
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

MATHJAX_CDN = re.compile(r"https://cdn\.jsdelivr\.net/npm/mathjax@3/es5/")
LOCAL_MATHJAX_PREFIX = "/_local_mathjax/"


def chromium_paths() -> tuple[str | None, str | None]:
    """(browser, driver) executables, or None for what is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver") or (
        "/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None)
    return browser, driver


def missing_requirements() -> list[str]:
    """What this machine lacks to run the browser check, each with how to get it (empty: all there)."""
    missing = []
    browser, driver = chromium_paths()
    if browser is None:
        missing.append("a Chromium browser (apt-get install chromium)")
    if driver is None:
        missing.append("chromedriver (apt-get install chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install selenium==4.51.0)")
    if local_mathjax_dir() is None:
        missing.append("a local MathJax for offline use (pip install django-static-mathjax==3.2.2.1)")
    return missing


def local_mathjax_dir() -> Path | None:
    """MathJax 3's es5 folder from the django-static-mathjax package, if installed."""
    try:
        import mathjax  # django-static-mathjax
    except ImportError:
        return None
    d = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    return d if (d / "tex-mml-chtml.js").exists() else None


# ---------------------------------------------------------------------------------------------- static checks
class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.imgs, self.math = set(), [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "img" and a.get("src"):
            self.imgs.append((a["src"], a.get("alt") or ""))
        if "math" in (a.get("class") or "").split():
            self.math += 1


def parse_page(path: Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text(encoding="utf-8"))
    return c


def static_problems(root: Path) -> dict[str, list[str]]:
    """Broken internal links and anchors, missing image files and images without alt text, per page."""
    pages = {p: parse_page(p) for p in sorted(root.rglob("*.html")) if "_static" not in p.relative_to(root).parts}
    problems: dict[str, list[str]] = {}
    for page, c in pages.items():
        rel = str(page.relative_to(root))
        out = []
        for href in c.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                out.append(f"broken link {href!r}: {target.relative_to(root.resolve()) if target.is_relative_to(root.resolve()) else target} does not exist")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse_page(target).ids
                if unquote(parts.fragment) not in ids:
                    out.append(f"broken anchor {href!r}: no id {parts.fragment!r} in {target.name}")
        for src, alt in c.imgs:
            # alt text must describe the image: a missing one, or the file name that myst-nb writes by
            # default, tells a screen-reader user nothing (set it in the cell's mystnb.image.alt metadata)
            if not alt.strip() or alt.strip().endswith((".png", ".svg", ".jpg")) or alt.strip() == src:
                out.append(f"image without alt text: {src!r}")
            parts = urlsplit(src)
            if parts.scheme in ("http", "https", "data") or parts.netloc:
                continue
            if not (page.parent / unquote(parts.path)).resolve().exists():
                out.append(f"missing image {src!r}")
        if out:
            problems[rel] = out
    return problems


# ---------------------------------------------------------------------------------------------- the server
class _Handler(http.server.SimpleHTTPRequestHandler):
    mathjax_dir: Path | None = None

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        path = urlsplit(self.path).path
        if path.startswith(LOCAL_MATHJAX_PREFIX) and self.mathjax_dir is not None:
            f = (self.mathjax_dir / path[len(LOCAL_MATHJAX_PREFIX):]).resolve()
            return self._send(f, "application/javascript" if f.suffix == ".js" else None)
        local = Path(self.translate_path(path))
        if local.is_dir():
            local = local / "index.html"
        if local.suffix == ".html" and local.exists() and self.mathjax_dir is not None:
            text = MATHJAX_CDN.sub(LOCAL_MATHJAX_PREFIX, local.read_text(encoding="utf-8"))
            return self._send_bytes(text.encode("utf-8"), "text/html; charset=utf-8")
        return super().do_GET()

    def _send(self, f: Path, ctype):
        if not f.is_file():
            self.send_error(404)
            return
        self._send_bytes(f.read_bytes(), ctype or self.guess_type(str(f)))

    def _send_bytes(self, data: bytes, ctype: str):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(root: Path, mathjax_dir: Path | None):
    handler = functools.partial(type("H", (_Handler,), {"mathjax_dir": mathjax_dir}), directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------------------------------------- the browser
_PAGE_STATE = """
const imgs = Array.from(document.images);
return {
  math_blocks: document.querySelectorAll('.math').length,
  typeset: document.querySelectorAll('.math mjx-container, mjx-container.MathJax').length,
  math_errors: document.querySelectorAll('mjx-merror').length,
  math_error_text: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5),
  broken_images: imgs.filter(i => i.complete && i.naturalWidth === 0).map(i => i.getAttribute('src')),
  images: imgs.length,
  stray_tex: (() => {
    // TeX that was not typeset shows as text: a '$' or a control word such as '\\alpha' in prose
    const skip = 'pre, code, script, style, mjx-container, .math, .MathJax, textarea';
    const root = document.querySelector('main') || document.body || document.documentElement;
    if (!(root instanceof Node)) return [];  // not an HTML page (e.g. a bare fragment): nothing to scan
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const found = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (n.parentElement && n.parentElement.closest(skip)) continue;
      const t = n.textContent;
      if (t.includes('$') || /\\[a-zA-Z]{2,}/.test(t)) found.push(t.trim().slice(0, 80));
    }
    return found.slice(0, 5);
  })(),
  height: Math.max(document.body ? document.body.scrollHeight : 0, document.documentElement.scrollHeight),
  mathjax_done: !!(window.MathJax && MathJax.startup && MathJax.startup.promise),
};
"""


# Every typeset formula wider than its column (or sticking out of it), measured in the current layout.
# The column is the nearest ancestor that is laid out as a block (not MathJax's own elements, not an
# inline element), taken without its padding and borders; the formula's extent is the union of its
# mjx-container box and of the mjx-math boxes inside it (a tagged equation's container has a min-width,
# an untagged one keeps the column's width while its mjx-math overflows).  Bounding boxes ignore any
# clipping, so a formula that scrolls inside an `overflow-x: auto` column is still reported.
_MATH_OVERFLOW = """
const tol = 1.0;  // px: sub-pixel rounding
const items = (window.MathJax && MathJax.startup && MathJax.startup.document && MathJax.startup.document.math)
  ? Array.from(MathJax.startup.document.math) : [];
const tex = new Map(items.map(i => [i.typesetRoot, i.math]));
const out = [];
let measured = 0;
for (const c of document.querySelectorAll('mjx-container')) {
  let col = c.parentElement;
  while (col && col !== document.body &&
         (col.tagName.startsWith('MJX-') || getComputedStyle(col).display.startsWith('inline'))) col = col.parentElement;
  if (!col) continue;
  const boxes = [c, ...c.querySelectorAll(':scope > mjx-math, mjx-mtable, mjx-table, mjx-labels')]
    .map(e => e.getBoundingClientRect()).filter(r => r.width > 0);
  if (!boxes.length) continue;  // not displayed
  measured += 1;
  const left = Math.min(...boxes.map(r => r.left)), right = Math.max(...boxes.map(r => r.right));
  const cs = getComputedStyle(col), cr = col.getBoundingClientRect();
  const colLeft = cr.left + parseFloat(cs.borderLeftWidth) + parseFloat(cs.paddingLeft);
  const colWidth = col.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const width = right - left;
  if (width > colWidth + tol || left < colLeft - tol || right > colLeft + colWidth + tol) {
    const src = tex.get(c) || c.getAttribute('aria-label') || c.textContent;
    out.push({display: c.getAttribute('display') === 'true', width: Math.round(width),
              column: Math.round(colWidth), left: Math.round(left - colLeft),
              tex: String(src).replace(/\\s+/g, ' ').trim().slice(0, 70)});
  }
}
return {measured: measured, overflowing: out, viewport: window.innerWidth};
"""

# collapsed content (exercise solutions in dropdowns, toggled cells) is opened so that its math is measured
_OPEN_COLLAPSED = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
document.querySelectorAll('.toggle-details__container, .toggle').forEach(e => { e.style.display = ''; });
"""

MATH_WIDTHS = (1280, 400)


def math_overflow(driver, widths=MATH_WIDTHS, height: int = 900) -> dict[int, dict]:
    """{viewport width: {'measured': n, 'overflowing': [...], 'viewport': actual}} for the open page.

    The viewport is set through the DevTools protocol (``Emulation.setDeviceMetricsOverride``, desktop
    layout), so that widths below a desktop window's minimum are honoured; it is reset afterwards.
    """
    driver.execute_script(_OPEN_COLLAPSED)
    return {int(width): state for width, state in at_widths(driver, widths, _MATH_OVERFLOW, height)}


def at_widths(driver, widths, script: str, height: int = 900) -> list:
    """``[(width, result of script)]``: the open page laid out at each viewport width in turn (set through
    the DevTools protocol, desktop layout, so that widths below a window's minimum are honoured; reset
    afterwards)."""
    import time

    out = []
    try:
        for width in widths:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": int(width), "height": height, "deviceScaleFactor": 1, "mobile": False})
            driver.execute_async_script("const done = arguments[arguments.length - 1];"
                                        "requestAnimationFrame(() => requestAnimationFrame(() => done()));")
            time.sleep(0.05)
            out.append((int(width), driver.execute_script(script)))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return out


_LAYOUT = """
const vis = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
return {page_overflow: document.documentElement.scrollWidth - window.innerWidth,
        search_controls: [...document.querySelectorAll('.search-button__button, #searchbox')].filter(vis).length};
"""

#: the viewport widths of the layout check: a phone and a desktop
LAYOUT_WIDTHS = (400, 1280)


def layout_problems(driver, widths=LAYOUT_WIDTHS, height: int = 900) -> list[str]:
    """The open page's layout faults at each viewport width: a page wider than the viewport (it scrolls
    sideways), or more than one visible search control (issue 22)."""
    out = []
    for width, state in at_widths(driver, widths, _LAYOUT, height):
        if state["page_overflow"] > 1:
            out.append(f"page wider than a {width} px viewport by {state['page_overflow']} px (it scrolls sideways)")
        if state["search_controls"] > 1:
            out.append(f"{state['search_controls']} search controls visible at {width} px (one is enough)")
    return out


def browser_problems(root: Path, screenshots: Path | None, timeout: float = 30.0,
                     theme: str = "light", math_widths=MATH_WIDTHS) -> tuple[dict, dict]:
    """Open every page; ``theme`` ('light' or 'dark') is stored as the theme's saved choice first.

    ``math_widths``: the viewport widths (px) at which every formula is measured against its column
    (empty: not measured).  ``stats[page]['math_overflow']`` has, per width, how many formulas were
    measured and which ones overflow."""
    if theme not in ("light", "dark"):
        raise ValueError(f"theme must be 'light' or 'dark'; got {theme!r}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver_path = chromium_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    server = serve(root, local_mathjax_dir())
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    problems, stats = {}, {}
    try:
        driver.get(base + "index.html")  # the theme reads the reader's choice from localStorage
        driver.execute_script(f"localStorage.setItem('mode', '{theme}'); localStorage.setItem('theme', '{theme}');")
        for page in sorted(root.rglob("*.html")):
            rel = str(page.relative_to(root))
            if rel in ("genindex.html", "search.html") or rel.startswith("_static/"):
                continue  # generated indexes and the theme's template fragments are not pages
            driver.get(base + rel)
            # wait for MathJax's typesetting promise (if the page has math), then for images
            driver.set_script_timeout(timeout)
            driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "const mj = window.MathJax && MathJax.startup && MathJax.startup.promise;"
                "if (!document.querySelector('.math')) { done(); return; }"
                "const t = setInterval(() => { if (window.MathJax && MathJax.startup && MathJax.startup.promise) {"
                "  clearInterval(t); MathJax.startup.promise.then(() => done()); } }, 100);"
                f"setTimeout(() => {{ clearInterval(t); done(); }}, {int(timeout * 1000) - 1000});")
            WebDriverWait(driver, timeout).until(
                lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)"))
            state = driver.execute_script(_PAGE_STATE)
            out = []
            if state["typeset"] < state["math_blocks"]:
                out.append(f"math not rendered: {state['typeset']} of {state['math_blocks']} math blocks typeset")
            if state["math_errors"]:
                out.append(f"{state['math_errors']} MathJax error(s) in math blocks: {state['math_error_text']}")
            for text in state["stray_tex"]:
                out.append(f"TeX shown as text (math not recognised): {text!r}")
            for src in state["broken_images"]:
                out.append(f"image did not load: {src}")
            for entry in driver.get_log("browser"):
                if entry["level"] == "SEVERE" and "/favicon.ico" not in entry["message"]:  # the browser's own request
                    out.append(f"console error: {entry['message'][:300]}")
            if screenshots is not None:
                shot = screenshots / (rel.replace("/", "__").removesuffix(".html") + ".png")
                shot.parent.mkdir(parents=True, exist_ok=True)
                height = min(int(state["height"]), 30000)
                # a full-page screenshot of a long chapter can outlast chromedriver's 10 s renderer timeout on a
                # loaded machine: try again at the window's height, and record (not fail) a missing picture
                for attempt_height in (max(900, height), 900):
                    try:
                        driver.set_window_size(1280, attempt_height)
                        shot.write_bytes(driver.get_screenshot_as_png())
                        break
                    except TimeoutException as exc:
                        state["screenshot_error"] = str(exc).splitlines()[0][:200]
                driver.set_window_size(1280, 900)
            out.extend(layout_problems(driver))
            if math_widths and state["math_blocks"]:
                widths = math_overflow(driver, math_widths)
                state["math_overflow"] = widths
                for width, m in widths.items():
                    for item in m["overflowing"]:
                        kind = "display math" if item["display"] else "inline math"
                        out.append(f"{kind} wider than its column at {width} px: {item['width']} px in a "
                                   f"{item['column']} px column (starts {item['left']:+d} px): {item['tex']!r}")
            stats[rel] = state
            if out:
                problems[rel] = out
    finally:
        driver.quit()
        server.shutdown()
    return problems, stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--html", type=Path, default=Path("_build/html"))
    p.add_argument("--screenshots", type=Path, default=Path("_build/screenshots"))
    p.add_argument("--theme", choices=["light", "dark"], default="light",
                   help="the colour theme to open the pages in (screenshots go to a 'dark' subfolder)")
    p.add_argument("--math-widths", default=",".join(map(str, MATH_WIDTHS)),
                   help="comma-separated viewport widths (px) at which every formula must fit its column "
                        "(default: %(default)s; empty: skip the math width check)")
    args = p.parse_args(argv)
    try:
        math_widths = tuple(int(w) for w in args.math_widths.split(",") if w.strip())
    except ValueError:
        p.error(f"--math-widths must be comma-separated integers; got {args.math_widths!r}")
    if any(w < 200 or w > 4000 for w in math_widths):
        p.error(f"--math-widths must lie in [200, 4000] px; got {args.math_widths!r}")
    root = args.html.resolve()
    if not (root / "index.html").exists():
        print(f"no built book at {root}: run `make book` first")
        return 1
    missing = missing_requirements()
    if missing:
        print("cannot run the browser check; missing: " + "; ".join(missing))
        return 2
    print("MathJax:", "served locally from django-static-mathjax (offline check)" if local_mathjax_dir()
          else "from its public CDN (needs internet)")
    problems = static_problems(root)
    shots = args.screenshots / "dark" if args.theme == "dark" else args.screenshots
    browser_found, stats = browser_problems(root, shots, theme=args.theme, math_widths=math_widths)
    for page, items in browser_found.items():
        problems.setdefault(page, []).extend(items)
    for page, s in sorted(stats.items()):
        wide = s.get("math_overflow", {})
        wide_text = "  ".join(f"{w}px:{len(m['overflowing']):>3}" for w, m in wide.items())
        print(f"{page:<50} math {s['typeset']:>4}/{s['math_blocks']:<4} images {s['images']:>3}  "
              f"{'wider than column ' + wide_text if wide else '':<38} {'OK' if page not in problems else 'FAIL'}")
    if math_widths:
        totals = {w: sum(len(s.get("math_overflow", {}).get(w, {}).get("overflowing", [])) for s in stats.values())
                  for w in math_widths}
        print("formulas wider than their column: " + ", ".join(f"{n} at {w} px" for w, n in totals.items()))
    for page, items in sorted(problems.items()):
        for item in items:
            print(f"FAIL {page}: {item}")
    print(f"{len(stats)} pages opened, {len(problems)} with problems; screenshots in {shots}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
