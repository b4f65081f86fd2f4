"""Sphinx extension: serve MathJax from the built book, so that its pages show typeset math offline.

Sphinx loads MathJax 3 from a CDN by default (``mathjax_path``), so a book opened without a network shows
raw TeX. This extension points ``mathjax_path`` at ``_static/mathjax/tex-mml-chtml.js`` (the same
component the CDN serves) and copies MathJax 3's ``es5`` build into the output, from the
``django-static-mathjax`` package pinned in ``requirements.txt`` (MathJax 3.2.2, Apache 2.0). The speech
rule engine (``sre``, 3.9 MB, used only by the accessibility explorer, which is off by default) is left
out. Where the package is missing, the CDN stays (and the build says so).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.util import logging

LOG = logging.getLogger(__name__)
COMPONENT = "tex-mml-chtml.js"
SKIP = {"sre", "tex-chtml-full-speech.js"}


def _mathjax_es5() -> Path | None:
    try:
        import mathjax  # django-static-mathjax
    except ImportError:
        return None
    d = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    return d if (d / COMPONENT).exists() else None


def _point_at_local_copy(app, config) -> None:
    if _mathjax_es5() is None:
        LOG.info("local_mathjax: django-static-mathjax is not installed; MathJax comes from the CDN")
        return
    config.mathjax_path = f"mathjax/{COMPONENT}"


def _copy(app, exception) -> None:
    src = _mathjax_es5()
    if exception is not None or src is None or app.builder.format != "html":
        return
    dst = Path(app.outdir) / "_static" / "mathjax"
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=lambda d, names: [n for n in names if n in SKIP])


def setup(app):
    app.connect("config-inited", _point_at_local_copy)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
