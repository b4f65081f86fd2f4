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

__all__ = ["load_results", "table1_rows", "markdown_table", "budget_summary", "family_differences", "claims"]


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


def budget_summary(results: list[dict]) -> dict:
    """What the committed runs cost and used: steps, batch, evaluation samples, CPU hours.

    CPU hours count one core per run (every grid run is single-threaded: ``provenance.torch_threads``)
    and add training and evaluation wall time.
    """
    if not results:
        return {"runs": 0, "steps": [], "batch_size": [], "eval_samples_test": [], "eval_samples_train": [],
                "train_hours": 0.0, "eval_hours": 0.0, "cpu_hours": 0.0, "hardware": []}
    pick = lambda key: sorted({r["config"][key] for r in results})
    threads = lambda r: r.get("provenance", {}).get("torch_threads") or 1
    train_h = sum(r["train_seconds"] * threads(r) for r in results) / 3600
    eval_h = sum(r["eval_seconds"] * threads(r) for r in results) / 3600
    hardware = sorted({f"{r['provenance'].get('cpu', '?')}, {r['provenance'].get('cpu_count', '?')} cores, "
                       f"torch {r['provenance'].get('torch', '?')}" for r in results})
    return {"runs": len(results), "steps": pick("steps"), "batch_size": pick("batch_size"),
            "eval_samples_test": pick("eval_samples_test"), "eval_samples_train": pick("eval_samples_train"),
            "train_hours": train_h, "eval_hours": eval_h, "cpu_hours": train_h + eval_h, "hardware": hardware}


def family_differences(rows: list[dict], split: str = "test") -> list[dict]:
    """Mean and worst (largest) difference ours - paper per model and estimator, over the cells run."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for est in ("concrete", "vimco"):
            diffs = [r[f"{split}_{est}_diff"] for r in rows if r["model"] == model and r[f"{split}_{est}_diff"] is not None]
            out.append({"model": model, "estimator": "Concrete" if est == "concrete" else "VIMCO/NVIL",
                        "cells": len(diffs), "mean_diff": sum(diffs) / len(diffs) if diffs else None,
                        "worst_diff": max(diffs) if diffs else None})
    return out


def claims(rows: list[dict], split: str = "test") -> list[dict]:
    """The paper's headline, cell by cell: "VIMCO outperformed Concrete relaxations for linear models and
    Concrete relaxations outperformed VIMCO for non-linear models" (Section 5.2).

    For every (model, m) where both estimators were run, which one has the lower NLL, here and in the
    paper, and whether the paper's claim for that model family holds in our cell.
    """
    out = []
    for r in rows:
        ours_c, ours_v = r[f"{split}_concrete_ours"], r[f"{split}_vimco_ours"]
        paper_c, paper_v = r[f"{split}_concrete_paper"], r[f"{split}_vimco_paper"]
        nonlinear = "~" in r["model"]
        claimed = "Concrete" if nonlinear else "VIMCO/NVIL"
        winner = None if ours_c is None or ours_v is None else ("Concrete" if ours_c < ours_v else "VIMCO/NVIL")
        out.append({"model": r["model"], "m": r["m"], "claimed_winner": claimed,
                    "paper_winner": "Concrete" if paper_c < paper_v else "VIMCO/NVIL",
                    "our_winner": winner, "our_margin": None if winner is None else abs(ours_c - ours_v),
                    "claim_holds": None if winner is None else winner == claimed})
    return out


OMNIGLOT_NOTE = (
    "Omniglot cells are not run here: the 28x28 Omniglot file (Burda et al.'s chardata.mat) could not be "
    "obtained on the machine that ran the grid (no internet, no local mirror; see data/README.md). With the "
    "file reachable (public URL or CONCRETE_DATA_MIRROR), the same grid runs with\n\n"
    "    python -m concrete_ref.experiments.grid table1 --dataset omniglot --preset book --workers 2\n")


def table_file_text(results: list[dict], dataset: str, preset: str) -> str:
    """The Markdown written to ``data/results/table1_<dataset>_<preset>.md``."""
    rows = table1_rows(results, dataset)
    b = budget_summary([r for r in results if r["config"]["dataset"] == dataset])
    j = lambda v: ", ".join(f"{x:,}" for x in v) or "-"
    done = sum(1 for r in rows for e in ("concrete", "vimco") if r[f"{e}_file"])
    text = (f"# Table 1 ({dataset}), preset '{preset}', beside the paper\n\n"
            f"Generated by `python -m concrete_ref.experiments.results table1 --dataset {dataset} --preset {preset}` "
            f"from the JSON files in this folder; no number is typed by hand.\n\n"
            f"NLL in nats (lower is better), diff = ours - paper. Ours: importance-sampled bound on the discrete "
            f"graph over the full split, L_k with k = {j(b['eval_samples_test'])} (test) and "
            f"{j(b['eval_samples_train'])} (train); the paper: L_50,000. Budget per run: "
            f"{j(b['steps'])} Adam steps of batch {j(b['batch_size'])} (the paper: 10^7 steps of 64). "
            f"Cells run: {done} of 24; CPU hours so far: {b['cpu_hours']:.2f} "
            f"({b['train_hours']:.2f} training, {b['eval_hours']:.2f} evaluation) on {'; '.join(b['hardware']) or '-'}. "
            f"Paper: {paper_numbers.SOURCE}.\n\n"
            f"## Test\n\n{markdown_table(rows, 'test')}\n## Train\n\n{markdown_table(rows, 'train')}")
    if dataset == "mnist":
        text += f"\n## Omniglot\n\n{OMNIGLOT_NOTE}"
    return text


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.results")
    p.add_argument("table", choices=["table1"])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--preset", default="book")
    args = p.parse_args(argv)
    results = load_results(preset=args.preset)
    text = table_file_text(results, args.dataset, args.preset)
    out = repo_root() / "data" / "results" / f"table1_{args.dataset}_{args.preset}.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
