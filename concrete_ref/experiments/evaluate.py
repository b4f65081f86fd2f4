"""Re-evaluate a trained run: how the importance-sampled estimate L_k moves as k grows (to 50,000).

    python -m concrete_ref.experiments.evaluate ksweep --run <run name> --examples 200

loads ``runs/<run name>/checkpoint.pt``, evaluates :math:`\\mathcal{L}_k` on the discrete graph for
k = 1, 10, 100, 1000, 5000, 10000, 50000 on ``--examples`` test images spread evenly over the test file
(which is ordered by class), by block averages of one stream of 50,000 samples per image (see
:func:`objectives.importance_bound_curve`), and writes ``data/results/ksweep_<run name>.json`` with
provenance.  The paper reports L_50,000.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np

from .cli import evenly_spaced, experiment_process, load_dataset, split_top_bottom
from .config import RunConfig
from .provenance import provenance, repo_root

#: the k of the sweep: every one divides the largest (block averages of one stream); 5,000 is the k of the
#: book5k preset, so its evaluation-k part of the gap is measured, not interpolated
KS = (1, 10, 100, 1000, 5000, 10_000, 50_000)


def load_trainer(run: str, device: str = "cpu"):
    import torch

    from .train import Trainer

    state = torch.load(repo_root() / "runs" / run / "checkpoint.pt", weights_only=False, map_location="cpu")
    cfg = RunConfig(**state["config"])
    data = load_dataset(cfg.dataset)
    train = np.asarray(data["train"][: cfg.train_examples], dtype=np.float64)
    split = split_top_bottom if cfg.task == "structured" else None
    trainer = Trainer(cfg, data, train.mean(0) if split is None else split(train.mean(0))[1], split=split,
                      device=device)
    trainer.load_state(state, evaluation_only=True)  # any device: the sweep draws from its own generator
    return trainer


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m concrete_ref.experiments.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["ksweep"])
    p.add_argument("--run", required=True, help="run name (folder under runs/)")
    p.add_argument("--examples", type=int, default=200)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads on the CPU (default 1)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:<i>, mps or auto")
    p.add_argument("--compile", default="auto", choices=["auto", "yes", "no"],
                   help="torch.compile the log weights (auto: when examples x 50,000 is at least 4,000,000)")
    args = p.parse_args(argv)
    with experiment_process():
        return _ksweep(args, argv)


def _ksweep(args, argv) -> dict:
    import torch

    from . import objectives as O
    from .cli import resolve_device
    from .train import atomic_write_json

    torch.set_num_threads(args.threads or 1)
    device = resolve_device(args.device)
    trainer = load_trainer(args.run, device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    x_all = evenly_spaced(trainer.data["test"], args.examples)  # the test file is ordered by class
    trainer.eval_compile = args.compile
    log_weights = trainer._eval_log_weights(x_all.shape[0] * max(KS))
    t0 = time.perf_counter()
    rows = []
    for start in range(0, x_all.shape[0], args.batch):
        inp, target = trainer._inputs(x_all[start : start + args.batch])
        rows.append(O.importance_bound_curve(trainer.model, inp, KS, chunk=1000, generator=gen, target=target,
                                             log_weights=log_weights))
    curve = torch.cat(rows, 1)  # (len(KS), N)
    result = {
        "run": args.run,
        "config": trainer.config.__dict__,
        "examples": int(x_all.shape[0]),
        "example_indices": f"every {max(1, trainer.data['test'].shape[0] // args.examples)}-th test image from the first",
        "ks": list(KS),
        "mean_bound": [float(v) for v in curve.mean(1)],
        "stderr_bound": [float(v) for v in curve.std(1) / np.sqrt(curve.shape[1])],
        "seconds": round(time.perf_counter() - t0, 1),
        "evaluation_engine": trainer.evaluation_engine(),
        "provenance": provenance(shlex.join(["python", "-m", "concrete_ref.experiments.evaluate",
                                             *(sys.argv[1:] if argv is None else argv)]), device),
    }
    atomic_write_json(repo_root() / "data" / "results" / f"ksweep_{args.run}.json", result)
    for k, v in zip(KS, result["mean_bound"]):
        print(f"k = {k:6d}: mean L_k = {v:.3f}")
    return result


if __name__ == "__main__":
    main()
