"""Several seeds trained together (concrete_ref.experiments.seed_stack): bit for bit the runs one by one."""

import dataclasses

import numpy as np
import pytest
import torch

from concrete_ref.experiments import cli
from concrete_ref.experiments.config import RunConfig
from concrete_ref.experiments.seed_stack import SeedStack, exact_bernoulli_log_likelihood, exact_linear, run_stacked
from concrete_ref.experiments.train import Trainer

DATA = cli.synthetic_binary_data(n_train=600, n_valid=100, n_test=100)
BASE = np.asarray(DATA["train"], dtype=np.float64).mean(0)


def config(seed, model="200H-784V", estimator="concrete", m=1, steps=12, task="density", arity=2, **kw):
    post, prior = cli.default_temperatures(task, arity)
    fields = dict(task=task, dataset="synthetic", model=model, arity=arity, estimator=estimator, samples=m,
                  seed=seed, steps=steps, batch_size=32, learning_rate=3e-3, weight_decay=1e-3 if task == "structured"
                  else 0.0, posterior_temperature=post, prior_temperature=prior, eval_samples_test=5,
                  eval_samples_train=5, eval_chunk=64, valid_every=0, valid_samples=5, valid_examples=50,
                  checkpoint_every=6, preset="smoke")
    fields.update(kw)
    return RunConfig(**fields)


def trainer(cfg):
    if cfg.task == "structured":
        return Trainer(cfg, DATA, cli.split_top_bottom(BASE)[1], split=cli.split_top_bottom)
    return Trainer(cfg, DATA, BASE)


def full_state(t):
    """Every number a run carries forward: parameters, buffers (centring, NVIL statistics), Adam moments."""
    out = {f"model.{k}": v for k, v in t.model.state_dict().items()}
    for name, sd in t.estimator.state_dict().items():
        out.update({f"{name}.{k}": v for k, v in sd.items()})
    for i, st in t.optimizer.state_dict()["state"].items():
        out.update({f"adam.{i}.{k}": v for k, v in st.items()})
    return out


def assert_same(a, b):
    sa, sb = full_state(a), full_state(b)
    assert sa.keys() == sb.keys()
    differ = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not differ, f"{a.config.run_name()}: {differ[:5]} differ"


CASES = [
    dict(model="200H-784V", estimator="concrete", m=1),
    dict(model="200H-200H-784V", estimator="concrete", m=1),  # centring buffers, updated per seed
    dict(model="200H~200H~784V", estimator="concrete", m=5),
    dict(model="200H-784V", estimator="vimco", m=5),
    dict(model="200H-200H-784V", estimator="arm", m=1),
    dict(model="40H~784V", estimator="concrete", m=1, arity=4),
    dict(model="200H-784V", estimator="concrete", m=1, weight_decay=1e-3),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['model']}-{c['estimator']}-m{c['m']}")
def test_stacked_seeds_equal_the_runs_one_by_one_bit_for_bit(one_torch_thread, case):
    alone = [trainer(config(s, **case)) for s in (0, 1, 2)]
    for t in alone:
        for _ in range(12):
            t.train_step()
    together = [trainer(config(s, **case)) for s in (0, 1, 2)]
    stack = SeedStack(together)
    bounds = [stack.step() for _ in range(12)]
    assert all(t.step == 12 for t in together)
    for a, b in zip(alone, together):
        assert_same(a, b)
    assert len(bounds[-1]) == 3 and len(set(bounds[-1])) == 3  # each seed its own batch and noise


def test_stacked_run_checkpoints_resume_alone_bit_exact(one_torch_thread, tmp_path):
    """A stack's checkpoints are single-run checkpoints (their own size, not the stack's); one resumed
    alone ends where the uninterrupted single run ends, curves included."""
    ref = trainer(config(1, steps=12))
    ref.run(tmp_path / "ref" / "checkpoint.pt", progress=False)
    together = [trainer(config(s, steps=12)) for s in (0, 1)]
    paths = [tmp_path / f"s{s}" / "checkpoint.pt" for s in (0, 1)]
    run_stacked(together, paths, progress=False, stop_after=6)
    assert all(t.step == 6 for t in together) and paths[1].exists()
    assert paths[1].stat().st_size < 1.2 * (tmp_path / "ref" / "checkpoint.pt").stat().st_size
    resumed = trainer(config(1, steps=12))
    resumed.load_state(torch.load(paths[1], weights_only=False))
    resumed.run(paths[1], progress=False)
    assert_same(ref, resumed)
    assert resumed.curves["train_objective"] == ref.curves["train_objective"]


def test_a_stack_refuses_what_it_cannot_run_exactly(one_torch_thread):
    with pytest.raises(ValueError, match="at least 2"):
        SeedStack([trainer(config(0))])
    with pytest.raises(ValueError, match="differs .* in learning_rate"):
        SeedStack([trainer(config(0)), trainer(config(1, learning_rate=1e-4))])
    with pytest.raises(ValueError, match="seeds of a stack must differ"):
        SeedStack([trainer(config(0)), trainer(config(0))])
    with pytest.raises(ValueError, match="not bit-exact"):
        SeedStack([trainer(config(s, estimator="nvil")) for s in (0, 1)])
    with pytest.raises(ValueError, match="computes its own gradients"):
        SeedStack([trainer(config(s, estimator="rebar")) for s in (0, 1)])
    with pytest.raises(ValueError, match="structured-prediction"):
        SeedStack([trainer(config(s, model="392V-40H-392V", task="structured")) for s in (0, 1)])
    late = trainer(config(1))
    late.train_step()
    with pytest.raises(ValueError, match="same step"):
        SeedStack([trainer(config(0)), late])


def test_the_exact_operators_equal_torch_alone_and_batched(one_torch_thread):
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(3, 5, 7, 30, generator=g), torch.randn(3, 11, 30, generator=g),
               torch.randn(3, 11, generator=g))
    assert torch.equal(exact_linear(x[0], w[0], b[0]), torch.nn.functional.linear(x[0], w[0], b[0]))
    batched = torch.func.vmap(exact_linear)(x, w, b)
    assert all(torch.equal(batched[s], torch.nn.functional.linear(x[s], w[s], b[s])) for s in range(3))
    logits, data = torch.randn(3, 4, 7, 30, generator=g), (torch.rand(3, 7, 30, generator=g) < 0.3).float()
    ref = [-torch.nn.functional.binary_cross_entropy_with_logits(logits[s], data[s].expand_as(logits[s]),
                                                                 reduction="none").sum(-1) for s in range(3)]
    batched = torch.func.vmap(exact_bernoulli_log_likelihood)(logits, data)
    assert all(torch.equal(batched[s], ref[s]) for s in range(3))
    # the gradients through the operator are torch's own
    lg = logits[0].clone().requires_grad_()
    exact_bernoulli_log_likelihood(lg, data[0]).sum().backward()
    lt = logits[0].clone().requires_grad_()
    ref_value = -torch.nn.functional.binary_cross_entropy_with_logits(lt, data[0].expand_as(lt), reduction="none")
    ref_value.sum(-1).sum().backward()
    assert torch.equal(lg.grad, lt.grad)


def test_stacked_runs_record_the_stack(one_torch_thread):
    together = [trainer(config(s)) for s in (0, 1)]
    SeedStack(together)
    assert all(t.engine["stacked_seeds"] == 2 for t in together)
    assert dataclasses.asdict(together[0].config)["seed"] == 0
