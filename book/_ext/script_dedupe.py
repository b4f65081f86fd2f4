"""Sphinx extension: drop duplicate inline ``<script>`` tags from every page.

Why: with Sphinx 7.4, an extension that calls ``app.add_js_file(None, body=...)`` after the builder
exists (sphinx-thebe and sphinx-togglebutton do, on ``env-before-read-docs``) has its script added
twice: once directly with ``filename=None`` and once from the registry with ``filename=''``, and the
two do not compare equal.  The page then declares ``const THEBE_JS_URL`` twice, which the browser
reports as a console error ("Identifier 'THEBE_JS_URL' has already been declared") on every page.

This handler keeps the first of every group of scripts that agree in (filename or '', priority,
attributes), preserving the order.
"""

from __future__ import annotations


def _key(js):
    return (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = _key(js)
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept  # the builder restores its own list before the next page


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
