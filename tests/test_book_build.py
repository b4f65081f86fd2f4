"""The web book: it builds with warnings as errors, its pages link correctly, and (where Chromium is
installed) every page renders in a real browser with no broken link, image, math block or console error.

The book is built once per test session into a temporary folder (the stored notebook outputs are used;
nothing is re-executed), so these tests check the committed state, not a stale ``_build/``. The PDF's
LaTeX source is built the same way (no TeX needed) and checked for dead references and unbreakable
long tables.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


def _browser_check_module():
    spec = importlib.util.spec_from_file_location("browser_check", ROOT / ".ci" / "browser_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_book(out: Path, *options: str) -> Path:
    """``jupyter-book build`` of the committed book into ``out`` with warnings as errors; its ``_build``."""
    command = [str(JUPYTER_BOOK), "build", str(ROOT), "--path-output", str(out), *options, "-W", "--keep-going"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(command[1:])} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out / "_build"


@pytest.fixture(scope="module")
def built_html(tmp_path_factory) -> Path:
    if not JUPYTER_BOOK.exists():
        pytest.skip(f"jupyter-book is not installed beside {sys.executable}")
    html = _build_book(tmp_path_factory.mktemp("book")) / "html"
    assert (html / "index.html").exists()
    return html


def _chapter_pages(html: Path) -> list[Path]:
    return sorted((html / "chapters").glob("*.html"))


def test_every_chapter_is_in_the_build(built_html):
    notebooks = sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb"))
    assert notebooks, "no chapters found"
    assert [p.stem for p in _chapter_pages(built_html)] == notebooks


def test_no_page_declares_an_inline_script_twice(built_html):
    """book/_ext/script_dedupe.py: Sphinx 7.4 adds late inline scripts twice (filename None and ''),
    and a doubled ``const THEBE_JS_URL`` is a console error in every browser."""
    for page in [built_html / "index.html", *_chapter_pages(built_html)]:
        text = page.read_text(encoding="utf-8")
        inline = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
        doubled = {body[:60] for body in inline if inline.count(body) > 1}
        assert not doubled, f"{page.name}: inline scripts repeated: {sorted(doubled)}"
        assert text.count("const THEBE_JS_URL") <= 1, page.name


def test_internal_links_anchors_and_images_resolve(built_html):
    problems = _browser_check_module().static_problems(built_html)
    assert not problems, "\n".join(f"{page}: {item}" for page, items in problems.items() for item in items)


def test_every_page_renders_in_headless_chromium(built_html, tmp_path):
    check = _browser_check_module()
    missing = check.missing_requirements()
    if missing:
        pytest.skip("browser check not run; missing: " + "; ".join(missing))
    # Formula widths are held at both widths, 1280 px and 400 px (a phone): no formula, inline or displayed, is
    # wider than its column at either (issue 23: the long ones are broken into aligned lines or split in the
    # text); `.ci/browser_check.py --math-widths 1280,400` lists any that comes back.
    problems, stats = check.browser_problems(built_html, tmp_path / "screenshots", math_widths=(1280, 400))
    assert not problems, "\n".join(f"{page}: {item}" for page, items in problems.items() for item in items)
    for page in _chapter_pages(built_html):
        rel = str(page.relative_to(built_html))
        assert rel in stats, f"{rel} was not opened"
        assert stats[rel]["math_blocks"] > 0, f"{rel}: no math found (did MathJax's markup change?)"
    shots = sorted((tmp_path / "screenshots").glob("chapters__*.png"))
    assert len(shots) == len(_chapter_pages(built_html))


def test_every_figure_in_every_chapter_has_alt_text():
    """Each image output carries ``mystnb.image.alt`` cell metadata (myst-nb writes it as the ``<img>``
    alt attribute; without it the alt text is the image's file name)."""
    import json

    missing = []
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb_path.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] != "code":
                continue
            if any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
                alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
                if len(alt.split()) < 8:
                    missing.append(f"{nb_path.name} cell {i}: alt text {alt!r}")
    assert not missing, "figures without a descriptive alt text:\n" + "\n".join(missing)


def test_every_chapter_figure_is_opaque():
    """Figures must read on the dark theme too: a transparent background would put black axes and text on
    a dark page. Every PNG output is decoded and must have no transparent pixel."""
    import base64
    import io
    import json

    import numpy as np
    from PIL import Image

    checked, transparent = 0, []
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb_path.read_text(encoding="utf-8"))["cells"]):
            for out in cell.get("outputs", []):
                png = out.get("data", {}).get("image/png")
                if png is None:
                    continue
                image = Image.open(io.BytesIO(base64.b64decode(png)))
                checked += 1
                if image.mode in ("RGBA", "LA") and np.asarray(image)[..., -1].min() < 255:
                    transparent.append(f"{nb_path.name} cell {i}")
    assert checked >= 20, f"only {checked} figures found"
    assert not transparent, f"figures with transparent pixels: {transparent}"


@pytest.fixture(scope="module")
def built_latex(tmp_path_factory) -> Path:
    """The PDF's LaTeX source (Sphinx's ``latex`` builder: no TeX installation needed, about 15 s)."""
    if not JUPYTER_BOOK.exists():
        pytest.skip(f"jupyter-book is not installed beside {sys.executable}")
    tex = _build_book(tmp_path_factory.mktemp("latex"), "--builder", "latex") / "latex" / "concrete_book.tex"
    assert tex.exists()
    return tex


def _latex_name(raw: str) -> str:
    match = re.fullmatch(r"\\detokenize\{(.*)\}", raw)
    return match.group(1) if match else raw


def test_every_pdf_cross_reference_has_its_label(built_latex):
    """Every ``\\hyperref[...]`` and ``\\ref{...}`` of the PDF's source names a ``\\label`` that exists, so the
    PDF prints no "??" and has no dead link. book/_ext/exercise_latex_refs.py: sphinx-exercise labels an
    exercise ``exercise:<label>`` but left references from another page (the notation page cites seven
    exercises of four chapters) pointing at ``<docname>:<label>``, which LaTeX counted as 18 unresolved
    references."""
    text = built_latex.read_text(encoding="utf-8")
    labels = {_latex_name(m) for m in re.findall(r"\\label\{((?:\\detokenize\{[^}]*\})|[^}]*)\}", text)}
    targets = {_latex_name(m) for m in re.findall(r"\\hyperref\[((?:\\detokenize\{[^}]*\})|[^\]]*)\]", text)}
    targets |= {_latex_name(m) for m in re.findall(r"\\ref\{((?:\\detokenize\{[^}]*\})|[^}]*)\}", text)}
    assert any(t.startswith("exercise:") for t in targets), "no exercise reference found: the check reads nothing"
    missing = sorted(targets - labels)
    assert not missing, f"{len(missing)} cross-reference(s) without a label: {missing[:20]}"


def _latex_tables(text: str) -> list[tuple[str, str, str]]:
    """(environment, column spec, body) of every table of the LaTeX source."""
    pattern = r"\\begin\{(longtable|tabulary)\}(?:\{\\linewidth\}\[t\])?(\{(?:[^{}]|\{[^{}]*\})*\})(.*?)\\end\{\1\}"
    return re.findall(pattern, text, re.S)


def test_a_table_taller_than_a_page_breaks_across_pages(built_latex):
    """book/_ext/latex_long_tables.py: a table of more than 4,000 characters is a ``longtable`` (which
    breaks across pages) with columns as wide as their contents; in ``tabulary`` (one unbreakable box) the
    notation page's "Symbols with two roles" ran past the foot of the page and lost its last rows.
    Shorter tables stay in ``tabulary``."""
    tables = _latex_tables(built_latex.read_text(encoding="utf-8"))
    assert len(tables) > 50, f"found {len(tables)} tables: the pattern reads nothing"
    roles = [t for t in tables if "how to tell them apart" in t[2]]
    assert len(roles) == 1
    kind, spec, body = roles[0]
    assert kind == "longtable", "the 23-row table of symbols with two roles is one unbreakable box"
    widths = [int(w) for w in re.findall(r"\\X\{(\d+)\}\{\d+\}", spec)]
    assert len(widths) == 4 and min(widths) >= 8 and widths[0] == min(widths), spec
    assert "the local use is defined in §3.8 only" in body  # its last row (m) is in the table
    assert sum(kind == "tabulary" for kind, _, _ in tables) > 50  # the others keep tabulary's balancing


def test_a_long_table_without_caption_continues_without_a_number(built_latex):
    """The page after a break of a captionless longtable is headed "continued from previous page", not
    "Table 1 -- continued ..." (the number of no table): latex_long_tables.py wraps the table in a group whose
    ``\\tablename`` swallows Sphinx's "\\tablename\\ \\thetable{} \\textendash{}", which the table's head must
    hold for that (a new Sphinx template without it fails here, not in xelatex)."""
    text = built_latex.read_text(encoding="utf-8")
    start = text.index("how to tell them apart")
    opened = text.rindex("\\begin{longtable}", 0, start)
    group = text.rindex("\\begingroup", 0, opened)
    assert text[group:].startswith("\\begingroup\\def\\tablename#1\\textendash#2{\\ignorespaces}%")
    assert "\\begin{savenotes}" in text[group:opened] and "\\end{" not in text[group:opened]
    head = text[opened : text.index("\\endhead", opened)]
    assert "\\sphinxtablecontinued{\\tablename\\ \\thetable{} \\textendash{} continued from previous page}" in head
    closed = text.index("\\end{savenotes}", opened) + len("\\end{savenotes}")
    assert text[closed:].lstrip().startswith("\\endgroup")  # the group ends with the table
    assert "\\caption" not in head  # captioned longtables keep their numbered line


def test_long_table_helpers_measure_columns_and_refuse_bad_input():
    spec = importlib.util.spec_from_file_location("latex_long_tables", ROOT / "book" / "_ext" / "latex_long_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from docutils import nodes

    def table(rows):
        group = nodes.tgroup(cols=len(rows[0]))
        group += [nodes.colspec(colwidth=1) for _ in rows[0]]
        body = nodes.tbody()
        for cells in rows:
            body += nodes.row("", *[nodes.entry("", nodes.paragraph(text=c)) for c in cells])
        group += body
        return nodes.table("", group)

    short = table([["x", "a" * 90], ["y", "b" * 90]])  # 2 + 180 characters
    assert module.column_percents(short, min_percent=10) == [10 + round(80 * 2 / 182), 10 + round(80 * 180 / 182)]
    assert module.is_long(short, limit=100) and not module.is_long(short)
    merged = table([["x", "y"]])
    next(merged.findall(nodes.entry))["morecols"] = 1
    assert module.column_percents(merged) is None  # merged cells: Sphinx's own spec
    with pytest.raises(ValueError, match="min_percent"):
        module.column_percents(short, min_percent=101)
    with pytest.raises(ValueError, match="limit"):
        module.is_long(short, limit=-1)
