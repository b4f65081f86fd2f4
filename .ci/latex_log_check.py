"""Fail on the faults a PDF build logs but latexmk lets through (it exits 0 on all of them).

Usage: ``python .ci/latex_log_check.py _build/latex/concrete_book.log`` (``make pdf`` runs it).

It reports, and exits 1 on:

- a glyph the font lacks (``Missing character: There is no ...``): the PDF prints nothing in its place;
- a reference or citation nothing defines (``LaTeX Warning: Reference ... undefined``): the PDF prints ??;
- a line more than ``--max-overfull`` points (default 40, about 14 mm) wider than its box: in a table
  cell that is text cut off or printed over the next column.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

OVERFULL = re.compile(r"^Overfull \\hbox \(([0-9.]+)pt too wide\)")
MISSING = re.compile(r"^Missing character: There is no .*")
UNDEFINED = re.compile(r"^LaTeX Warning: (Reference|Citation) .*")


def faults(log_text: str, max_overfull: float = 40.0) -> list[str]:
    """The log's faults, one line each with a count (empty when the PDF is clean)."""
    if max_overfull < 0:
        raise ValueError(f"max_overfull must be >= 0 points; got {max_overfull}")
    lines = log_text.splitlines()
    found: Counter[str] = Counter()
    for i, line in enumerate(lines):
        if MISSING.match(line) or UNDEFINED.match(line):
            found[line.strip()] += 1
        match = OVERFULL.match(line)
        if match and float(match.group(1)) > max_overfull:
            content = lines[i + 1].strip() if i + 1 < len(lines) else ""
            found[f"{line.strip()}: {content[:80]}"] += 1
    return [f"{count}x {what}" for what, count in sorted(found.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log", type=Path, help="the LaTeX log (_build/latex/concrete_book.log)")
    parser.add_argument("--max-overfull", type=float, default=40.0,
                        help="widest overfull line allowed, in points (default 40)")
    args = parser.parse_args(argv)
    if not args.log.is_file():
        parser.error(f"log: no such file {args.log}")
    found = faults(args.log.read_text(errors="replace"), args.max_overfull)
    for line in found:
        print(line)
    if found:
        print(f"the PDF has the faults above ({args.log})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
