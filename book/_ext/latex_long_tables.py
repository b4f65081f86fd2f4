"""Tables too long for one PDF page break across pages.

Sphinx's LaTeX writer sets a table of at most 30 rows in ``tabulary``, which is one unbreakable box: a
table of fewer but long rows taller than the text block runs past the foot of the page and its last
rows are lost. On the notation page, "Symbols with two roles" (23 rows of prose, 5,921 characters) did:
its last rows fell off the foot of the page (xelatex: "Overfull \\vbox (362pt too high)" with the
tables in the text font, 53 pt in \\footnotesize); the HTML was right.

This post-transform, for the LaTeX builder only, marks a table as ``longtable`` (Sphinx's class for a
table that breaks across pages, its header repeated) when its text is longer than
:data:`LONG_TABLE_CHARACTERS`. Shorter tables keep ``tabulary``, which balances the column widths by
their contents. Sphinx's longtable takes the source's column widths, and a Markdown table gives none (its
columns become ``l`` columns that never wrap), so the transform gives the columns widths in proportion
to their contents, or equal widths for a table with merged cells.

Where a longtable breaks, Sphinx's template heads the next page "Table <number> -- continued from previous
page". A table without a caption has no number (LaTeX printed the number of the last captioned table, or
"Table 0"), so for a table without a caption the transform sets that line as "continued from previous page"
(:data:`UNNUMBERED_CONTINUATION`, LaTeX kept local to the table by a group).
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

#: characters of table text above which a table is set as a longtable. In \footnotesize (the table font
#: of _config.yml's preamble) a full-width line holds about 120 characters and a page about 60 lines, so
#: 4,000 characters with their row rules fill most of a page; the book's longest tables after the one
#: above hold 2,539 and 2,429 characters and fit
LONG_TABLE_CHARACTERS = 4000


def _text_length(node: nodes.Node) -> int:
    """Characters of ``node``'s text, a run of whitespace counting once."""
    return len(" ".join(node.astext().split()))


def is_long(table: nodes.table, limit: int = LONG_TABLE_CHARACTERS) -> bool:
    """Whether ``table`` has more than ``limit`` characters of text (whitespace runs count once)."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0 characters; got {limit}")
    return _text_length(table) > limit


#: the narrowest column of a longtable, in percent of the text width
MIN_COLUMN_PERCENT = 8


def column_percents(table: nodes.table, min_percent: int = MIN_COLUMN_PERCENT) -> list[int] | None:
    """Column widths in percent, in proportion to each column's characters (as tabulary shares the width),
    none below ``min_percent``; None for a table with merged cells, more than one column group, or more
    columns than ``min_percent`` allows."""
    if not 0 <= min_percent <= 100:
        raise ValueError(f"min_percent must be in [0, 100]; got {min_percent}")
    groups = list(table.findall(nodes.tgroup))
    if len(groups) != 1:
        return None
    columns = len(list(groups[0].findall(nodes.colspec)))
    if columns == 0 or columns * min_percent > 100:
        return None
    lengths = [0] * columns
    for row in groups[0].findall(nodes.row):
        entries = [child for child in row.children if isinstance(child, nodes.entry)]
        if len(entries) != columns or any(e.get("morecols") or e.get("morerows") for e in entries):
            return None
        for i, entry in enumerate(entries):
            lengths[i] += _text_length(entry)
    total = sum(lengths) or 1
    spare = 100 - columns * min_percent
    return [min_percent + round(spare * length / total) for length in lengths]


#: LaTeX around a longtable without a caption. Sphinx's template heads a continued page with
#: ``\tablename\ \thetable{} \textendash{} continued from previous page``; inside the group, ``\tablename``
#: swallows everything up to the en dash and the ``{}`` after it, which leaves "continued from previous page".
#: (Were the template to lose its en dash, xelatex would stop with a runaway argument: a failed
#: ``make pdf``, never a wrong line.)
UNNUMBERED_CONTINUATION = (
    "\\begingroup\\def\\tablename#1\\textendash#2{\\ignorespaces}%\n",
    "\\endgroup\n",
)


def _without_number(table: nodes.table) -> None:
    """Wrap ``table`` (captionless) in :data:`UNNUMBERED_CONTINUATION`'s group, as raw LaTeX around it."""
    before, after = (nodes.raw("", text, format="latex") for text in UNNUMBERED_CONTINUATION)
    parent = table.parent
    index = parent.index(table)
    parent.insert(index + 1, after)
    parent.insert(index, before)


class LongTablesInLatex(SphinxPostTransform):
    """Set every long table as a ``longtable``, its columns as wide as their contents, for LaTeX only."""

    builders = ("latex",)
    default_priority = 200

    def run(self, **kwargs) -> None:
        for table in list(self.document.findall(nodes.table)):  # the loop adds nodes beside tables
            if not is_long(table) or "longtable" in table["classes"]:
                continue
            table["classes"].append("longtable")
            # Sphinx's longtable without given widths has l columns, which never wrap (1,502 pt wide here)
            colspecs = list(table.findall(nodes.colspec))
            percents = column_percents(table) or [1] * len(colspecs)  # equal widths for merged cells
            for colspec, percent in zip(colspecs, percents):
                colspec["colwidth"] = percent
            table["classes"].append("colwidths-given")
            if not any(isinstance(child, nodes.title) for child in table.children):
                _without_number(table)


def setup(app):
    app.add_post_transform(LongTablesInLatex)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
