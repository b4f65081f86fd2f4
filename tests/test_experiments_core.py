"""The PyTorch layer: parity with the NumPy reference, notation, and the objectives on tiny models.

Tiny models have few enough latent states to enumerate, so the exact log-likelihood, the exact
multi-sample bound and its exact gradient are available; Monte Carlo estimators are tested against
them with z-score tolerances.
"""

import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import concrete_ref as cr  # noqa: E402
from concrete_ref.experiments import objectives as O  # noqa: E402
from concrete_ref.experiments import relaxed as R  # noqa: E402
from concrete_ref.experiments.models import DiscreteLatentModel, hypercube_corners  # noqa: E402
from concrete_ref.experiments.notation import parse_notation  # noqa: E402

TEMPS = [0.05, 0.1, 0.5, 2 / 3, 1.0, 2.0]


# ---------------------------------------------------------------- parity with the NumPy core
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_exp_concrete_parity(dtype, rtol):
    rng = np.random.default_rng(0)
    for lam in TEMPS:
        for k in [2, 4, 8]:
            logits = rng.uniform(-30, 30, size=(50, k))
            g = cr.sample_gumbel((50, k), rng)
            y_ref = cr.exp_concrete_transform(logits, lam, g)
            y = R.exp_concrete_rsample(torch.tensor(logits, dtype=dtype), lam, torch.tensor(g, dtype=dtype))
            np.testing.assert_allclose(y.numpy(), y_ref, rtol=rtol, atol=rtol * (1 + np.abs(y_ref).max()))
            lp_ref = cr.exp_concrete_log_density(y_ref, logits, lam)
            lp = R.exp_concrete_log_prob(torch.tensor(y_ref, dtype=dtype), torch.tensor(logits, dtype=dtype), lam)
            np.testing.assert_allclose(lp.numpy(), lp_ref, rtol=rtol, atol=rtol * (1 + np.abs(lp_ref).max()))


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_logistic_parity(dtype, rtol):
    rng = np.random.default_rng(1)
    for lam in TEMPS:
        logit = rng.uniform(-30, 30, size=200)
        noise = cr.sample_logistic(200, rng)
        y_ref = cr.logistic_transform(logit, lam, noise)
        y = R.logistic_rsample(torch.tensor(logit, dtype=dtype), lam, torch.tensor(noise, dtype=dtype))
        np.testing.assert_allclose(y.numpy(), y_ref, rtol=rtol, atol=rtol)
        lp_ref = cr.logistic_log_density(y_ref, logit, lam)
        lp = R.logistic_log_prob(torch.tensor(y_ref, dtype=dtype), torch.tensor(logit, dtype=dtype), lam)
        np.testing.assert_allclose(lp.numpy(), lp_ref, rtol=rtol, atol=rtol * (1 + np.abs(lp_ref).max()))


def test_torch_noise_distribution():
    g = torch.Generator().manual_seed(0)
    from scipy import stats

    assert stats.kstest(R.gumbel_noise((50_000,), generator=g).numpy(), stats.gumbel_r.cdf).pvalue > 1e-3
    assert stats.kstest(R.logistic_noise((50_000,), generator=g).numpy(), stats.logistic.cdf).pvalue > 1e-3


# ---------------------------------------------------------------- notation
@pytest.mark.parametrize("text,latent,links,conditional", [
    ("200H-784V", [200], ["linear"], False),
    ("200H-200H-784V", [200, 200], ["linear", "linear"], False),
    ("200H~784V", [200], ["nonlinear"], False),
    ("200H\u223c200H\u223c784V", [200, 200], ["nonlinear", "nonlinear"], False),
    ("392V-240H-240H-392V", [240, 240], ["linear"] * 3, True),
    ("392V\u2013240H\u2013240H\u2013240H\u2013392V", [240] * 3, ["linear"] * 4, True),
])
def test_parse_notation(text, latent, links, conditional):
    spec = parse_notation(text)
    assert [layer.units for layer in spec.latent] == latent
    assert list(spec.links) == links and spec.conditional == conditional


@pytest.mark.parametrize("text,arity,match", [
    ("", 2, "non-empty"), ("200X-784V", 2, "cannot read layer"), ("200H-784H", 2, "rightmost layer"),
    ("784V", 2, "at least two layers"), ("392V-392V", 2, "at least one latent"),
    ("200H-784V-200H-784V", 2, "only stand at the ends"), ("200H~784V", 3, "arity must be"),
    ("200H~784V", 8, "divisible by log2"), ("0H-784V", 2, "at least one unit"),
])
def test_bad_notation(text, arity, match):
    with pytest.raises(ValueError, match=match):
        parse_notation(text, arity)


def test_hypercube_corners_round_trip():
    for n in [2, 4, 8]:
        c = hypercube_corners(n)
        assert c.shape == (int(math.log2(n)), n)
        assert len({tuple(col.tolist()) for col in c.T}) == n  # distinct corners
        assert set(c.flatten().tolist()) == {-1.0, 1.0}


# ---------------------------------------------------------------- tiny models, exact enumeration
def _tiny(notation="3H-5V", arity=2, seed=0):
    torch.manual_seed(seed)
    model = DiscreteLatentModel(parse_notation(notation, arity)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return model


def _all_states(model):
    """Every joint configuration of the latent layers as (states, values) per layer."""
    per_layer = []
    for code in model.codes:
        if code.arity == 2:
            opts = [torch.tensor(s, dtype=torch.float64) for s in itertools.product([0.0, 1.0], repeat=code.units)]
            per_layer.append([(s, 2 * s - 1) for s in opts])
        else:
            opts = [torch.tensor(s) for s in itertools.product(range(code.arity), repeat=code.nodes)]
            per_layer.append([(s, code.corners.double().T[s].flatten()) for s in opts])
    return list(itertools.product(*per_layer))


def _exact_log_joint(model, x, config):
    """log p(x, h) for one configuration, computed directly from the generative maps."""
    codes = model.codes
    lp = codes[0].discrete_log_prob(config[0][0], model.prior_logits)
    for j in range(1, len(codes)):
        lp = lp + codes[j].discrete_log_prob(config[j][0], model.p_maps[j - 1](config[j - 1][1]))
    logits = model.p_out(config[-1][1])
    return lp + (x * logits - torch.nn.functional.softplus(logits)).sum(-1)


def _exact_log_q(model, x, config):
    L = len(model.codes)
    lq = model.codes[L - 1].discrete_log_prob(config[L - 1][0], model.q_maps[L - 1](x))
    for j in reversed(range(L - 1)):
        lq = lq + model.codes[j].discrete_log_prob(config[j][0], model.q_maps[j](config[j + 1][1] - getattr(model, f"center_{j}")))
    return lq


@pytest.mark.parametrize("notation,arity", [("3H-5V", 2), ("2H-2H-4V", 2), ("4H~4V", 4)])
def test_importance_bound_converges_to_exact_log_likelihood(notation, arity):
    model = _tiny(notation, arity).eval()
    x = torch.tensor([[1.0, 0, 1, 1, 0][: model.spec.layers[-1].units]], dtype=torch.float64)
    configs = _all_states(model)
    exact = torch.logsumexp(torch.stack([_exact_log_joint(model, x[0], c) for c in configs]), 0)
    g = torch.Generator().manual_seed(0)
    l1 = O.importance_bound(model, x, 1, generator=g)  # single draws: L_1 is noisy, check L_k instead
    bounds = [O.importance_bound(model, x.expand(200, -1), k, chunk=500, generator=g).mean() for k in (1, 10, 2000)]
    assert bounds[0] <= bounds[1] + 0.02 and bounds[1] <= bounds[2] + 0.02  # L_k increases with k
    assert abs(bounds[2] - exact) < 0.01 and bounds[2] <= exact + 0.005
    assert torch.isfinite(l1).all()


def _exact_lm_and_grad(model, x, m):
    """The exact discrete L_m by enumerating all m-tuples of configurations, and its gradient."""
    configs = _all_states(model)
    logw = torch.stack([_exact_log_joint(model, x, c) - _exact_log_q(model, x, c) for c in configs])
    logq = torch.stack([_exact_log_q(model, x, c) for c in configs])
    total = 0.0
    for tup in itertools.product(range(len(configs)), repeat=m):
        idx = torch.tensor(tup)
        total = total + torch.exp(logq[idx].sum()) * (torch.logsumexp(logw[idx], 0) - math.log(m))
    model.zero_grad()
    total.backward()
    return float(total.detach()), {n: p.grad.clone() for n, p in model.named_parameters()}


def _mc_gradient(model, estimate, draws):
    grads = {n: [] for n, _ in model.named_parameters()}
    for _ in range(draws):
        model.zero_grad()
        estimate().backward()
        for n, p in model.named_parameters():
            grads[n].append(p.grad.clone())
    return {n: torch.stack(v) for n, v in grads.items()}


def _z_scores(exact, samples):
    out = []
    for n, s in samples.items():
        mean, se = s.mean(0), s.std(0) / math.sqrt(s.shape[0])
        mask = se > 1e-9
        out.append(((mean - exact[n]).abs()[mask] / se[mask]).flatten())
    return torch.cat(out)


def test_vimco_gradient_is_unbiased():
    model = _tiny("2H-3V", seed=1).eval()  # eval: centering frozen, so the objective is fixed
    x = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    _, exact = _exact_lm_and_grad(model, x, 2)
    g = torch.Generator().manual_seed(2)
    samples = _mc_gradient(model, lambda: O.vimco_objective(model, x[None], 2, generator=g).sum(), 4000)
    z = _z_scores(exact, samples)
    assert z.max() < 4.5, z.max()  # ~ 30 parameters: 4.5 sigma is a per-test false-alarm rate < 1e-4


def test_nvil_gradient_is_unbiased():
    model = _tiny("2H-3V", seed=3).eval()
    baseline = O.NVILBaseline(3).double().eval()
    with torch.no_grad():
        baseline.mean.fill_(-3.0)
        baseline.var.fill_(4.0)
    x = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    _, exact = _exact_lm_and_grad(model, x, 1)
    g = torch.Generator().manual_seed(4)
    samples = _mc_gradient(model, lambda: O.nvil_objective(model, baseline, x[None], generator=g)[0].sum(), 4000)
    # NVIL's signal is scaled by 1/max(1, sigma): the expectation is the exact gradient for the
    # generative parameters and the exact gradient / max(1, sigma) for the inference parameters.
    scale = 1.0 / max(1.0, math.sqrt(4.0))
    exact = {n: (v * scale if n.startswith("q_maps") else v) for n, v in exact.items()}
    z = _z_scores(exact, samples)
    assert z.max() < 4.5, z.max()


def test_vimco_learning_signals_by_hand():
    logw = torch.tensor([[0.0], [1.0], [3.0]])
    s = O.vimco_learning_signals(logw)
    lhat = torch.logsumexp(logw, 0) - math.log(3)
    by_hand = [lhat - (torch.logsumexp(torch.tensor([(1 + 3) / 2, 1.0, 3.0]), 0) - math.log(3)),
               lhat - (torch.logsumexp(torch.tensor([0.0, 1.5, 3.0]), 0) - math.log(3)),
               lhat - (torch.logsumexp(torch.tensor([0.0, 1.0, 0.5]), 0) - math.log(3))]
    np.testing.assert_allclose(s[:, 0].numpy(), torch.stack(by_hand).flatten().numpy(), rtol=1e-6)


def test_concrete_gradient_matches_finite_differences():
    """With common random numbers, the relaxed bound is a smooth function of the parameters."""
    model = _tiny("3H-4V", seed=5).eval()
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=torch.float64)

    def objective():
        return O.concrete_objective(model, x, 5, generator=torch.Generator().manual_seed(7)).sum()

    model.zero_grad()
    objective().backward()
    p = model.prior_logits
    h = 1e-6
    for i in range(p.numel()):
        with torch.no_grad():
            p[i] += h
            up = objective().item()
            p[i] -= 2 * h
            down = objective().item()
            p[i] += h
        assert p.grad[i].item() == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_relaxed_bound_below_relaxed_log_marginal():
    """Relaxed L_1 <= relaxed L_k (k large), the usual bound argument applied to the relaxed model."""
    model = _tiny("3H-4V", seed=6).eval()
    x = torch.tensor([[1.0, 1.0, 0.0, 1.0]], dtype=torch.float64).expand(400, -1)
    g = torch.Generator().manual_seed(8)
    with torch.no_grad():
        l1 = O.concrete_objective(model, x, 1, generator=g)
        lk = O.concrete_objective(model, x[:50], 4000, generator=g)
    se = l1.std() / math.sqrt(l1.numel())
    assert l1.mean() < lk.mean() - 3 * se or l1.mean() < lk.mean()
    assert lk.std() < 0.05  # L_4000 has almost converged: its spread across repeats is small


# ---------------------------------------------------------------- structured prediction (conditional models)
def _tiny_conditional(temperature, seed=9, scale=1.0):
    torch.manual_seed(seed)
    model = DiscreteLatentModel(parse_notation("4V-3H-2H-4V"), temperatures=(temperature, temperature)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return model.eval()


def test_exact_conditional_log_likelihood_by_hand():
    """One latent unit: log p(b | t) = log(sigma(a) p(b | h=+1) + sigma(-a) p(b | h=-1)), a = the unit's logit."""
    torch.manual_seed(3)
    model = DiscreteLatentModel(parse_notation("2V-1H-2V")).double().eval()
    top = torch.tensor([1.0, 0.0], dtype=torch.float64)
    bottom = torch.tensor([0.0, 1.0], dtype=torch.float64)
    a = model.p_maps[0](top)[0]

    def lik(h):
        p = torch.sigmoid(model.p_out(torch.tensor([h], dtype=torch.float64)))
        return ((1 - p[0]) * p[1]).item()

    by_hand = math.log(torch.sigmoid(a).item() * lik(1.0) + torch.sigmoid(-a).item() * lik(-1.0))
    assert abs(O.exact_conditional_log_likelihood(model, top, bottom).item() - by_hand) < 1e-12
    with pytest.raises(ValueError, match="max_states"):
        O.exact_conditional_log_likelihood(model, top, bottom, max_states=1)
    with pytest.raises(ValueError, match="binary conditional"):
        O.exact_conditional_log_likelihood(_tiny("3H-5V"), top, bottom)


def test_structured_bound_below_exact_conditional_likelihood():
    model = _tiny_conditional(2 / 3)
    top = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    bottom = torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    exact = O.exact_conditional_log_likelihood(model, top[0], bottom[0])
    g = torch.Generator().manual_seed(0)
    l1 = O.importance_bound(model, top.expand(4000, -1), 1, generator=g, target=bottom.expand(4000, -1))
    l100 = O.importance_bound(model, top.expand(200, -1), 100, generator=g, target=bottom.expand(200, -1))
    assert l1.mean() < l100.mean() <= exact + 1e-9  # L^SP_1 <= L^SP_100 <= log p(bottom | top)
    assert exact - l100.mean() < 0.05
    l5000 = O.importance_bound(model, top, 5000, generator=g, target=bottom)
    assert abs(l5000.item() - exact.item()) < 0.01


def test_evaluation_is_on_the_discrete_graph():
    """At a high temperature the relaxed graph is a different model: its bound differs from the
    discrete one by far more than Monte Carlo error; at a low temperature the two agree."""
    top = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64).expand(2000, -1)
    bottom = torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=torch.float64).expand(2000, -1)
    gaps = {}
    for lam in (10.0, 0.01):
        model = _tiny_conditional(lam, scale=3.0)
        g = torch.Generator().manual_seed(1)
        disc = O.importance_bound(model, top, 10, generator=g, target=bottom)
        relx = O.importance_bound(model, top, 10, generator=g, target=bottom, relaxed=True)
        se = math.sqrt((disc.var() + relx.var()).item() / disc.numel())
        gaps[lam] = (abs(disc.mean() - relx.mean()).item(), se)
    assert gaps[10.0][0] > 10 * gaps[10.0][1]
    assert gaps[0.01][0] < 5 * gaps[0.01][1] + 0.01


def test_bound_curve_block_averages_increase_with_k_and_reach_the_exact_value():
    model = _tiny("3H-5V", seed=11).eval()
    x = torch.tensor([[1.0, 0, 1, 1, 0]], dtype=torch.float64).expand(20, -1)
    exact = torch.logsumexp(torch.stack([_exact_log_joint(model, x[0], c) for c in _all_states(model)]), 0)
    curve = O.importance_bound_curve(model, x, (1, 10, 100, 5000), chunk=1000,
                                     generator=torch.Generator().manual_seed(3)).mean(1)
    assert torch.all(curve[1:] >= curve[:-1] - 1e-3)
    assert abs(curve[-1] - exact) < 0.01
    with pytest.raises(ValueError, match="divide"):
        O.importance_bound_curve(model, x, (3, 10))


def test_conditional_means_match_enumeration():
    """E[sigma(logits(h))] with h ~ p(h | top): Monte Carlo against the exact sum over the binary states."""
    model = _tiny_conditional(2 / 3)
    top = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    exact = torch.zeros(4, dtype=torch.float64)
    c1, c2 = model.codes
    for s1 in itertools.product([0.0, 1.0], repeat=c1.units):
        s1 = torch.tensor(s1, dtype=torch.float64)
        p1 = c1.discrete_log_prob(s1, model.p_maps[0](top[0])).exp()
        for s2 in itertools.product([0.0, 1.0], repeat=c2.units):
            s2 = torch.tensor(s2, dtype=torch.float64)
            p2 = c2.discrete_log_prob(s2, model.p_maps[1](2 * s1 - 1)).exp()
            exact += p1 * p2 * torch.sigmoid(model.p_out(2 * s2 - 1))
    mc = model.conditional_means(top, 200_000, generator=torch.Generator().manual_seed(5))[0]
    assert torch.allclose(mc, exact, atol=4e-3)  # 4 standard errors of a mean of 200,000 values in [0, 1]
    with pytest.raises(ValueError, match="conditional"):
        _tiny("3H-5V").conditional_means(top, 10)


def test_load_model_restores_a_trained_run(tmp_path):
    from concrete_ref.experiments import structured
    from concrete_ref.experiments.train import load_model

    args = ["--dataset", "synthetic", "--model", "392V-20H-392V", "--preset", "smoke", "--steps", "20",
            "--run-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path), "--no-progress"]
    structured.main(args)
    model = load_model(tmp_path / "run" / "checkpoint.pt")
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert not model.training and model.spec.conditional
    top = torch.zeros(3, 392)
    means = model.conditional_means(top, 7, generator=torch.Generator().manual_seed(0))
    assert means.shape == (3, 392) and bool(((means > 0) & (means < 1)).all())
