"""Read committed result files and set them beside the paper's numbers (no number typed by hand).

``python -m concrete_ref.experiments.results table1 --preset book`` prints the comparison table as
Markdown and writes it to ``data/results/table1_<dataset>_<preset>.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import paper_numbers
from .provenance import repo_root

__all__ = ["load_results", "table1_rows", "markdown_table"]


def load_results(results_dir: Path | None = None, **match) -> list[dict]:
    """All result files whose config matches every ``key=value`` given (e.g. ``preset="book"``)."""
    results_dir = Path(results_dir or repo_root() / "data" / "results")
    out = []
    for path in sorted(results_dir.glob("*.json")):
        res = json.loads(path.read_text())
        if "config" not in res or "metrics" not in res:
            continue
        if all(res["config"].get(k) == v for k, v in match.items()):
            res["file"] = path.name
            out.append(res)
    return out


def table1_rows(results: list[dict], dataset: str = "mnist") -> list[dict]:
    """One row per (model, m): ours and the paper's NLL for Concrete and VIMCO/NVIL, test and train."""
    index = {(r["config"]["model"], r["config"]["samples"], r["config"]["estimator"]): r for r in results
             if r["config"]["task"] == "density" and r["config"]["dataset"] == dataset and r["config"]["arity"] == 2}
    rows = []
    for model in paper_numbers.TABLE1_MODELS:
        for m in (1, 5, 50):
            row = {"model": model, "m": m}
            for est_label, est in (("concrete", "concrete"), ("vimco", "nvil" if m == 1 else "vimco")):
                res = index.get((model, m, est))
                for split in ("test", "train"):
                    paper = paper_numbers.table1(dataset, split, model, m, est)
                    ours = res["metrics"][f"{split}_nll"] if res else None
                    row[f"{split}_{est_label}_ours"] = ours
                    row[f"{split}_{est_label}_paper"] = paper
                    row[f"{split}_{est_label}_diff"] = None if ours is None else ours - paper
                row[f"{est_label}_steps"] = res["steps_done"] if res else None
                row[f"{est_label}_file"] = res["file"] if res else None
            rows.append(row)
    return rows


def markdown_table(rows: list[dict], split: str = "test") -> str:
    """Markdown: ours | paper | difference for Concrete and VIMCO/NVIL (one split)."""
    head = (f"| model | m | Concrete ours | Concrete paper | diff | VIMCO/NVIL ours | VIMCO/NVIL paper | diff |\n"
            f"|---|---|---|---|---|---|---|---|\n")
    fmt = lambda v, signed=False: "not run" if v is None else (f"{v:+.1f}" if signed else f"{v:.1f}")
    lines = []
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['m']} | {fmt(r[f'{split}_concrete_ours'])} | {fmt(r[f'{split}_concrete_paper'])} | "
            f"{fmt(r[f'{split}_concrete_diff'], True)} | {fmt(r[f'{split}_vimco_ours'])} | "
            f"{fmt(r[f'{split}_vimco_paper'])} | {fmt(r[f'{split}_vimco_diff'], True)} |"
        )
    return head + "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.results")
    p.add_argument("table", choices=["table1"])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--preset", default="book")
    args = p.parse_args(argv)
    results = load_results(preset=args.preset)
    rows = table1_rows(results, args.dataset)
    steps = sorted({r["steps_done"] for r in results if r["config"]["dataset"] == args.dataset})
    text = (f"# Table 1 ({args.dataset}), preset '{args.preset}', beside the paper\n\n"
            f"NLL in nats (lower is better); ours: L_k on the discrete graph as recorded in each result file; "
            f"training steps per run: {steps or 'none yet'} (the paper: 10^7). Paper: {paper_numbers.SOURCE}.\n\n"
            f"## Test\n\n{markdown_table(rows, 'test')}\n## Train\n\n{markdown_table(rows, 'train')}")
    out = repo_root() / "data" / "results" / f"table1_{args.dataset}_{args.preset}.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
