"""Time one Adam step of the relaxed multi-sample objective: concrete_ref against torch.distributions.

    python benchmarks/step_time.py [--model 200H-200H-784V] [--repeats 7] [--steps 30] [--threads 2]

Both implementations train the same model (same parameters, same minibatch) and are timed
interleaved, in the same process, so that machine noise affects both alike; each figure is the
median over repeats of the mean step time over ``--steps`` steps.  The objective values of the two are
compared on the same noise (identical seeds), and NaN/inf values of either are counted over a
separate run of many steps at low temperature.
"""

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from concrete_ref.experiments import objectives as O  # noqa: E402
from concrete_ref.experiments.models import DiscreteLatentModel  # noqa: E402
from concrete_ref.experiments.notation import parse_notation  # noqa: E402
from naive_relaxed import naive_concrete_objective  # noqa: E402


def make_step(model, objective, x, m):
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)

    def step():
        loss = -objective(model, x, m).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def time_steps(step, n):
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="200H-200H-784V")
    p.add_argument("--samples", type=int, nargs="+", default=[1, 5, 50])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.rand(64, 784) < 0.13).float()
    spec = parse_notation(args.model)
    rows = []
    for m in args.samples:
        torch.manual_seed(1)
        base = DiscreteLatentModel(spec, base_rate=x.mean(0))
        ours_model, naive_model = base, copy.deepcopy(base)
        ours = make_step(ours_model, O.concrete_objective, x, m)
        naive = make_step(naive_model, naive_concrete_objective, x, m)
        n = max(3, args.steps // max(1, m // 5))
        ours(), naive()  # warm up
        t_ours, t_naive = [], []
        for _ in range(args.repeats):
            t_ours.append(time_steps(ours, n))
            t_naive.append(time_steps(naive, n))
        # objective values on identical noise: same global seed before each evaluation
        check = DiscreteLatentModel(spec, base_rate=x.mean(0)).eval()
        with torch.no_grad():
            torch.manual_seed(5)
            v_ours = O.concrete_objective(check, x, m).mean().item()
            torch.manual_seed(5)
            v_naive = naive_concrete_objective(check, x, m).mean().item()
        row = {"m": m, "ours_ms": 1e3 * statistics.median(t_ours), "naive_ms": 1e3 * statistics.median(t_naive),
               "objective_ours": v_ours, "objective_naive": v_naive}
        row["speedup"] = row["naive_ms"] / row["ours_ms"]
        rows.append(row)
        print(f"m={m:3d}  ours {row['ours_ms']:7.2f} ms  torch.distributions {row['naive_ms']:7.2f} ms  "
              f"ratio {row['speedup']:.2f}x  objective {v_ours:.4f} vs {v_naive:.4f}", flush=True)
    # NaN/inf census: a low prior temperature, as in a temperature sweep
    bad = {"ours": 0, "naive": 0}
    torch.manual_seed(2)
    model = DiscreteLatentModel(spec, temperatures=(0.1, 0.05), base_rate=x.mean(0)).eval()
    total = 0
    with torch.no_grad():
        for _ in range(50):
            a = O.concrete_objective(model, x, 5)
            b = naive_concrete_objective(model, x, 5)
            bad["ours"] += int((~torch.isfinite(a)).sum())
            bad["naive"] += int((~torch.isfinite(b)).sum())
            total += a.numel()
    print(f"non-finite per-example objectives at temperatures (0.1, 0.05), {total} examples: "
          f"ours {bad['ours']}, torch.distributions {bad['naive']}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "threads": args.threads, "rows": rows,
                                         "nonfinite": bad, "nonfinite_total": total,
                                         "torch": torch.__version__}, indent=1))


if __name__ == "__main__":
    main()
