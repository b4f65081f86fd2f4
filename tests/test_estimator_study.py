"""The estimator study of Chapter 10 (concrete_ref.experiments.estimator_study).

Its exact gradients match finite differences and an independent enumeration; its statistics recover a
known bias and variance; an unbiased estimator's measured bias is within its standard errors of zero
while a wrongly scaled one's (and NVIL's with its variance normalisation on) is not; Concrete's bias
against the discrete ELBO's gradient shrinks as the temperature falls; and the committed result file
has its schema and provenance, the same exact gradients as a rerun, and statistics that a small rerun
reproduces within their standard errors.
"""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from concrete_ref.experiments import estimator_study as S  # noqa: E402
from concrete_ref.experiments.results import committed_results_dir  # noqa: E402
from tests.test_experiments_core import _exact_lm_and_grad  # noqa: E402

COMMITTED = committed_results_dir() / "studies" / "estimator_toy_study.json"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _run(model, x, label, calls, batch, seed=0, **kw):
    variant = next(v for v in S.variants() if v.label == label)
    est, _ = S.make_estimator(model, variant, x, **kw)
    draws = S.gradient_draws(model, est, x, variant.m, calls, batch, torch.Generator().manual_seed(seed))
    S.set_temperatures(model, S.Variant("", "", ""))
    return draws


# ---------------------------------------------------------------- the exact targets
@pytest.mark.parametrize("notation", list(S.TOY_MODELS))
def test_exact_gradient_matches_finite_differences_and_an_independent_enumeration(notation):
    model = S.toy_model(notation)
    x = S.toy_image(model)
    for m in (1, 2):
        value, grads = S.exact_bound_and_gradient(model, x, m)
        ref_value, ref = _exact_lm_and_grad(model, x, m)  # tests/test_experiments_core: from the maps directly
        assert value == pytest.approx(ref_value, abs=1e-12)
        for n in grads:
            torch.testing.assert_close(grads[n], ref[n], rtol=0, atol=1e-12)
    _, grads = S.exact_bound_and_gradient(model, x, 1)
    h = 1e-6
    for name, p in model.named_parameters():  # one entry of every parameter tensor
        i = p.numel() // 2
        with torch.no_grad():
            p.view(-1)[i] += h
            up = S.exact_bound_and_gradient(model, x, 1)[0]
            p.view(-1)[i] -= 2 * h
            down = S.exact_bound_and_gradient(model, x, 1)[0]
            p.view(-1)[i] += h
        assert grads[name].view(-1)[i].item() == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-8), name


def test_the_toy_is_fixed_by_its_seed_and_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b = S.toy_model("4H-6V", seed=0), S.toy_model("4H-6V", seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.prior_logits, S.toy_model("4H-6V", seed=1).prior_logits)
    assert not a.training


# ---------------------------------------------------------------- the statistics
def test_summarise_recovers_a_known_bias_and_variance():
    """Draws g + b + noise with a known covariance, in minibatch means of 50."""
    rng = np.random.default_rng(0)
    d, calls, batch = 12, 400, 50
    g = rng.normal(size=d)
    bias = 0.05 * rng.normal(size=d)
    sd = rng.uniform(0.5, 2.0, size=d)
    draws = g + bias + rng.normal(size=(calls, batch, d)).mean(1) * sd
    s = S.summarise(draws, g, batch)
    assert abs(s["variance"] - (sd ** 2).sum()) < 4 * s["variance_se"]
    assert abs(s["bias2"] - (bias ** 2).sum()) < 4 * s["bias2_se"]
    assert s["bias2"] > 4 * s["bias2_se"] and s["max_z"] > 4
    assert s["mse"] == pytest.approx(s["bias2"] + s["variance"])
    unbiased = S.summarise(g + rng.normal(size=(calls, batch, d)).mean(1) * sd, g, batch)
    assert abs(unbiased["bias2"]) < 4 * unbiased["bias2_se"] and unbiased["cosine"] > 0.99


def test_jackknife_errors_hold_for_correlated_components():
    """Components that move together along the bias (what gradient draws do): the jackknife standard errors of
    bias^2, variance and MSE match their spread over 200 repeats, where a formula for independent components
    (concrete_ref.estimators.estimator_summary) falls short."""
    from concrete_ref.estimators import estimator_summary

    rng = np.random.default_rng(1)
    d, calls, batch = 10, 50, 20
    g = rng.normal(size=d)
    direction = g / np.linalg.norm(g)
    est, se, independent = [], [], []
    for _ in range(200):
        noise = rng.normal(size=(calls, batch, 1)) * 2.0 * direction + 0.2 * rng.normal(size=(calls, batch, d))
        draws = 1.2 * g + noise.mean(1)  # biased along g, noisy mostly along g
        s = S.summarise(draws, g, batch)
        est.append([s["bias2"], s["variance"], s["mse"]])
        se.append([s["bias2_se"], s["variance_se"], s["mse_se"]])
        independent.append(estimator_summary(draws, g)["bias2_se"])
    spread, se = np.std(est, axis=0, ddof=1), np.mean(se, axis=0)
    assert np.all(np.abs(se / spread - 1) < 0.25), (se, spread)
    assert np.mean(independent) < 0.6 * spread[0]


# ---------------------------------------------------------------- the estimators on the toy
def test_unbiased_estimator_within_its_errors_and_wrongly_scaled_ones_not():
    model = S.toy_model("4H-6V")
    x = S.toy_image(model)
    _, exact = S.exact_bound_and_gradient(model, x, 1)
    g = S._flat(exact)
    draws = _run(model, x, "disarm", calls=40, batch=200, seed=1)
    ok = S.summarise(draws, g, 200)
    print(f"disarm: max z {ok['max_z']:.2f}, bias^2 {ok['bias2']:.5f} +- {ok['bias2_se']:.5f}")
    assert ok["max_z"] < 4.0 and abs(ok["bias2"]) < 4 * ok["bias2_se"]
    scaled = S.summarise(1.1 * draws, g, 200)  # the same draws, 10% too long
    print(f"disarm x 1.1: max z {scaled['max_z']:.1f}, bias^2 {scaled['bias2']:.4f} +- {scaled['bias2_se']:.4f}")
    assert scaled["max_z"] > 4.0 and scaled["bias2"] > 4 * scaled["bias2_se"]
    # NVIL with its variance normalisation on (the running variance at 4: the inference network's gradient halved)
    variant = next(v for v in S.variants() if v.label == "nvil, baseline E_q[f]")
    est, _ = S.make_estimator(model, variant, x)
    with torch.no_grad():
        est.baseline.var.fill_(4.0)
    normalised = S.summarise(S.gradient_draws(model, est, x, 1, 40, 200, torch.Generator().manual_seed(2)), g, 200)
    assert normalised["bias2"] > 4 * normalised["bias2_se"]
    inf = S.parameter_groups(model)["inference"]
    half = np.array(g)
    half[inf] *= 0.5
    matched = S.summarise(S.gradient_draws(model, est, x, 1, 40, 200, torch.Generator().manual_seed(2)), half, 200)
    assert matched["max_z"] < 4.0  # ... and it is exactly that: unbiased for the half-scaled gradient


def test_concrete_bias_shrinks_as_the_temperature_falls():
    """Against the discrete ELBO's gradient, on the one-layer toy: bias^2 at lambda1 = 0.3 < 1 < 2 (each by more
    than 4 combined standard errors), while the variance grows."""
    model = S.toy_model("4H-6V")
    x = S.toy_image(model)
    g = S._flat(S.exact_bound_and_gradient(model, x, 1)[1])
    s = {lam: S.summarise(_run(model, x, f"concrete, lambda1 = {lam:g}", calls=20, batch=200, seed=3), g, 200)
         for lam in (0.3, 1.0, 2.0)}
    for lo, hi in ((0.3, 1.0), (1.0, 2.0)):
        gap = s[hi]["bias2"] - s[lo]["bias2"]
        assert gap > 4 * math.hypot(s[hi]["bias2_se"], s[lo]["bias2_se"]), (lo, hi)
        assert s[lo]["variance"] > s[hi]["variance"]
    assert s[0.3]["bias2"] > 4 * s[0.3]["bias2_se"]  # still biased at 0.3


def test_straight_through_is_unbiased_for_the_generative_parameters_only():
    """Its forward pass is the exact sample, so the generative parameters get grad log p(x, b) at an exact b."""
    model = S.toy_model("3H-3H-6V")
    x = S.toy_image(model)
    g = S._flat(S.exact_bound_and_gradient(model, x, 1)[1])
    groups = S.parameter_groups(model)
    draws = _run(model, x, "st-gumbel, lambda1 = 1", calls=20, batch=200, seed=4)
    gen = S.summarise(draws[:, groups["generative"]], g[groups["generative"]], 200)
    inf = S.summarise(draws[:, groups["inference"]], g[groups["inference"]], 200)
    assert gen["max_z"] < 4.0 and inf["bias2"] > 4 * inf["bias2_se"]


# ---------------------------------------------------------------- the committed file
@pytest.fixture(scope="module")
def committed():
    if not COMMITTED.exists():
        pytest.skip(f"{COMMITTED} is not there (run python -m concrete_ref.experiments.estimator_study --json ...)")
    return json.loads(COMMITTED.read_text())


def test_committed_file_has_its_schema_and_provenance(committed):
    assert committed["study"] == "estimator_toy_study"
    prov = committed["provenance"]
    for key in ("git_commit", "git_dirty", "command", "torch", "numpy", "cpu", "date"):
        assert key in prov, key
    assert "concrete_ref.experiments.estimator_study" in prov["command"]
    assert [m["notation"] for m in committed["models"]] == list(S.TOY_MODELS)
    labels = [v.label for v in S.variants(committed["settings"]["temperatures"])]
    for m in committed["models"]:
        assert [v["label"] for v in m["variants"]] == labels
        for v in m["variants"]:
            assert set(v["stats"]) == {"generative", "inference", "all"}
            for key in ("bias2", "bias2_se", "variance", "variance_se", "mse", "rel_mse", "cosine", "max_z"):
                assert math.isfinite(v["stats"]["all"][key]), (m["notation"], v["label"], key)
            assert v["seconds_per_draw"] > 0 and v["mse_x_seconds"] > 0
            assert v["draws"] == committed["settings"]["draws_per_variant"]


def test_committed_exact_gradients_are_a_rerun_s(committed):
    for m in committed["models"]:
        model = S.toy_model(m["notation"], committed["settings"]["seed"])
        x = S.toy_image(model)
        assert m["image"] == x.tolist()
        for key, k in (("L1", 1), ("L2", 2)):
            value, grads = S.exact_bound_and_gradient(model, x, k)
            assert value == pytest.approx(m["exact"][key]["value"], abs=1e-10)
            np.testing.assert_allclose(S._flat(grads), m["exact"][key]["gradient"], rtol=0, atol=1e-10)


def test_committed_statistics_are_reproduced_by_a_small_rerun(committed):
    """DisARM and Concrete at lambda1 = 1 on the one-layer toy: a rerun with other noise, 10x fewer draws,
    agrees with the committed bias^2 and variance within 4 combined standard errors."""
    entry = next(m for m in committed["models"] if m["notation"] == "4H-6V")
    model = S.toy_model("4H-6V", committed["settings"]["seed"])
    x = S.toy_image(model)
    g = np.array(entry["exact"]["L1"]["gradient"])
    for label in ("disarm", "concrete, lambda1 = 1"):
        old = next(v for v in entry["variants"] if v["label"] == label)["stats"]["all"]
        new = S.summarise(_run(model, x, label, calls=20, batch=100, seed=99), g, 100)
        for key in ("bias2", "variance"):
            tol = 4 * math.hypot(old[f"{key}_se"], new[f"{key}_se"])
            assert abs(new[key] - old[key]) < tol, (label, key, new[key], old[key], tol)


# ---------------------------------------------------------------- the MNIST runs (estimator_runs)
def _fake_result(folder, model, estimator, seed, nll, **override):
    """A result file of the comparison, made from a committed 'book' result with the book5k config."""
    from concrete_ref.experiments import identity

    src = json.loads((committed_results_dir() / "density_mnist_200H_784V_concrete_m1_book_s0.json").read_text())
    cfg = identity.preset_config({**src["config"], "model": model, "estimator": estimator, "seed": seed,
                                  "preset": "book5k"})
    cfg.update(override)
    res = {**src, "config": cfg, "metrics": {**src["metrics"], "test_nll": nll, "train_nll": nll - 2.0}}
    path = folder / (identity.run_name(cfg) + ".json")
    path.write_text(json.dumps(res))
    return path


def test_estimator_runs_reads_what_is_there(tmp_path):
    from concrete_ref.experiments import estimator_runs as E

    empty = E.estimator_runs(tmp_path)
    assert empty == {"runs": [], "other": [], "unreadable": []}
    assert E.count_sentence(empty).startswith(f"0 of the {E.EXPECTED} runs are finished") and E.EXPECTED == 72
    assert E.nll_rows([]) == [] and E.published_rows([])[0]["ours_train_objective"] is None
    for seed, nll in ((0, 100.0), (1, 102.0)):
        _fake_result(tmp_path, "200H~784V", "nvil", seed, nll)
    _fake_result(tmp_path, "200H-784V", "concrete", 0, 90.0)
    _fake_result(tmp_path, "200H~784V", "rebar", 0, 99.0)
    _fake_result(tmp_path, "200H-784V", "concrete", 1, 91.0, steps=5)  # a budget override: not a cell
    (tmp_path / "density_mnist_200H_784V_arm_m1_book5k_s9.json").write_text("{not json")
    found = E.estimator_runs(tmp_path)
    assert len(found["runs"]) == 4 and len(found["other"]) == 1 and len(found["unreadable"]) == 1
    assert E.count_sentence(found).startswith("4 of the 72 runs are finished: 1 of the 54 runs of the six newer "
                                              "estimators and 3 of the 18 Concrete and NVIL runs.")
    pub = E.published_rows(found["runs"])[0]
    assert pub["ours_n"] == 1 and pub["ours_steps"] == 20_000 and pub["ours_images_seen"] == 20_000 * 64
    rows = {(r["model"], r["estimator"]): r for r in E.nll_rows(found["runs"])}
    assert rows[("200H~784V", "nvil")]["test_nll"] == pytest.approx(101.0)
    assert rows[("200H~784V", "nvil")]["test_nll_sd"] == pytest.approx(math.sqrt(2.0))
    assert rows[("200H-784V", "concrete")]["n"] == 1 and rows[("200H-784V", "concrete")]["test_nll_sd"] is None
    c = E.curves(found["runs"][0])  # (sorted by file name: the concrete run)
    r0 = found["runs"][0]
    assert c["valid_seconds"][-1] == pytest.approx(c["valid_step"][-1] / r0["steps_done"] * r0["train_seconds"])
