"""Chapter 5's checks can fail: each passes with the chapter's formula and fails when that formula is perturbed.

Every check printed by a checked cell of ``chapters/05_relaxing_discrete_graphs.ipynb`` that tests a
formula is run here twice (or more): once as in the chapter, where it must pass, and once with the
formula perturbed the way it could plausibly be wrong (a wrong exponent, a factor missing, a density at
the wrong temperature, a log of a sum instead of a log of a mean), where it must fail.  The chapter's
model and seeds are used, with smaller Monte Carlo sizes where the check keeps its power.  The new
package functions the chapter calls (``relaxation_theory``, the additions to ``toy_models`` and
``estimators``) are tested against independent computations at the end.
"""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from scipy import integrate
from scipy.optimize import minimize_scalar
from scipy.special import expit, logsumexp

from concrete_ref import estimators as E
from concrete_ref import relaxation_theory as rt
from concrete_ref import toy_models as T
from concrete_ref.concrete import exp_concrete_log_density, exp_concrete_transform
from concrete_ref.gumbel import sample_gumbel


@pytest.fixture(scope="module")
def vae():
    """The chapter's 4-state, 8-pixel model (seed 1) and observation (seed 101)."""
    model = T.random_vae(4, 8, np.random.default_rng(1))
    x = (np.random.default_rng(101).random(8) < 0.5).astype(float)
    return model, x


@pytest.fixture(scope="module")
def marginal(vae):
    model, x = vae
    return T.relaxed_log_marginal_mc(model, x, 2 / 3, np.random.default_rng(9), 1_000_000)


@pytest.fixture(scope="module")
def binary():
    """The chapter's binary model of Sections 5.4 and 5.6."""
    model = T.random_vae(2, 8, np.random.default_rng(6), weight_scale=0.8)
    x = (np.random.default_rng(206).random(8) < 0.5).astype(float)
    return model, x


def _f_rec(model, x):
    return lambda z: model.log_likelihood(x, z)


# ------------------------------------------------------------------- 5.3: the relaxed ELBO is a bound
def _eq25_values(model, x, alpha, g, prior_temperature=2 / 3, posterior_density_temperature=1.0):
    y = exp_concrete_transform(alpha, 1.0, g)
    return (model.log_likelihood(x, np.exp(y)) + exp_concrete_log_density(y, model.prior_logits, prior_temperature)
            - exp_concrete_log_density(y, alpha, posterior_density_temperature))


def test_relaxed_bound_check_fails_with_the_densities_at_the_wrong_temperatures(vae, marginal):
    """The 'who goes where' table: prior density at lambda2, posterior density at lambda1.  Swapped, the
    'bound' exceeds the relaxed log marginal at the prior's logits."""
    model, x = vae
    g = sample_gumbel((200_000, 4), np.random.default_rng(3))
    posteriors = [np.zeros(4), model.posterior_logits(x), model.prior_logits]

    def check(**kw):
        vals = [_eq25_values(model, x, a, g, **kw) for a in posteriors]
        return rt.check_below("bound", [v.mean() for v in vals], [v.std() / np.sqrt(v.size) for v in vals], *marginal)

    assert check()
    assert not check(prior_temperature=1.0, posterior_density_temperature=2 / 3)


def test_relaxed_bound_check_fails_for_eq21(vae, marginal):
    """Eq. (21), the discrete masses at the relaxed sample, in place of Eq. (20), at the exact posterior."""
    model, x = vae
    g = sample_gumbel((200_000, 4), np.random.default_rng(4))
    vals = T.relaxed_objective_values(model, x, model.posterior_logits(x), 1.0, 2 / 3, g)
    for key, expected in [("eq20", True), ("eq21", False)]:
        v = vals[key]
        assert bool(rt.check_below("bound", [v.mean()], [v.std() / np.sqrt(v.size)], *marginal)) is expected


# ------------------------------------------------------------------- 5.4: the relaxed multi-sample bound
def test_multi_sample_checks_fail_without_the_one_over_m(binary):
    """L~1 < L~2 < L~3 < log p~(x): with log(sum) in place of log(mean) the bound exceeds log p~(x); with
    the mean of the logs in place of the log of the mean the sequence is flat."""
    model, x = binary
    alpha = np.zeros(2)
    marg = T.relaxed_log_marginal_quadrature(model, x, 0.5)
    bounds = [T.relaxed_multi_sample_bound_quadrature(model, x, alpha, 2 / 3, 0.5, m) for m in (1, 2, 3)]
    assert rt.check_increasing("L_m", bounds + [marg], 1e-6)
    log_sum = [b + np.log(m) for b, m in zip(bounds, (1, 2, 3))]
    assert not rt.check_increasing("L_m", log_sum + [marg], 1e-6)
    mean_of_logs = [bounds[0]] * 3
    assert not rt.check_increasing("L_m", mean_of_logs + [marg], 1e-6)


def test_multi_sample_mc_check_fails_without_the_one_over_m(vae, marginal):
    model, x = vae
    v, s = T.relaxed_multi_sample_bound_mc(model, x, np.zeros(4), 1.0, 2 / 3, 50, np.random.default_rng(120), 5_000)
    assert rt.check_below("L_50", [v], [s], *marginal)
    assert not rt.check_below("L_50", [v + np.log(50)], [s], *marginal)


def test_quadrature_checks_fail_with_a_wrong_noise_density_or_too_coarse_a_step(binary, monkeypatch):
    """The quadrature of L~1 must equal the Monte Carlo estimate of Eq. (25): with a Logistic of scale 1.1
    in place of the standard one it does not.  And doubling a step of 1.5 changes the values."""
    model, x = binary
    alpha = np.zeros(2)
    mc = T.relaxed_objective_estimates(model, x, alpha, 2 / 3, 0.5, np.random.default_rng(13), 400_000)["eq20"]
    good = T.relaxed_multi_sample_bound_quadrature(model, x, alpha, 2 / 3, 0.5, 1)
    assert rt.check_z("quad", mc[0], mc[1], good)
    coarse = abs(T.relaxed_multi_sample_bound_quadrature(model, x, alpha, 2 / 3, 0.5, 2, step=1.5)
                 - T.relaxed_multi_sample_bound_quadrature(model, x, alpha, 2 / 3, 0.5, 2, step=3.0))
    assert not rt.check_tolerance("converged", coarse, 1e-8)

    original = T.logistic_trapezoid

    def scaled(step=0.2, half_width=40.0):
        nodes, _ = original(step, half_width)
        s = 1.1
        return nodes, step * np.exp(-np.logaddexp(0.0, nodes / s) - np.logaddexp(0.0, -nodes / s)) / s

    monkeypatch.setattr(T, "logistic_trapezoid", scaled)
    wrong = T.relaxed_multi_sample_bound_quadrature(model, x, alpha, 2 / 3, 0.5, 1)
    assert not rt.check_z("quad", mc[0], mc[1], wrong)


# ------------------------------------------------------------------------- 5.6: one logit
def test_one_logit_limit_check_fails_if_the_limit_were_the_discrete_elbo(binary):
    """The relaxed ELBO's maximiser approaches that of discrete reconstruction + relaxed KL at ratio 3/4;
    a claim that it approaches the discrete ELBO's maximiser t* fails."""
    model, x = binary
    at = lambda t: np.array([t, 0.0])
    maximise = lambda obj: minimize_scalar(lambda t: -obj(t), bounds=(-5.0, 8.0), method="bounded",
                                           options={"xatol": 1e-8}).x
    t_relaxed = maximise(lambda t: T.relaxed_expectation_k2(model, x, at(t), 0.05, 0.0375))
    t_limit = maximise(lambda t: T.discrete_elbo_parts(model, x, at(t))[0]
                       + T.relaxed_expectation_k2(model, x, at(t), 1.0, 0.75, "kl"))
    post = model.posterior_logits(x)
    t_star = post[0] - post[1]
    assert abs(t_relaxed - t_limit) < 0.05
    assert not abs(t_relaxed - t_star) < 0.05


# ---------------------------------------------------------------- 5.7: the score function is unbiased
def test_score_function_unbiasedness_check_fails_without_centring_the_score(vae):
    model, x = vae
    alpha = np.zeros(4)
    exact = T.discrete_elbo_gradient(model, x, alpha)
    d = E.sample_categorical(alpha, np.random.default_rng(8), (100_000,))
    ell = np.asarray(T.learning_signal(model, x, d, alpha))
    good = ell[:, None] * (d - 0.25)
    wrong = ell[:, None] * d  # the score of a one-hot sample without its mean
    assert E.estimator_summary(good, exact)["z"] < 4.5
    assert not E.estimator_summary(wrong, exact)["z"] < 4.5


# ------------------------------------------------------------ 5.8: the bias, its exponent and constant
@pytest.fixture(scope="module")
def small_temperature_bias(vae):
    model, x = vae
    f = _f_rec(model, x)
    lams = np.array([0.005, 0.01, 0.02, 0.04])
    vec, vec_se, b2, b2_se = [], [], [], []
    for i, lam in enumerate(lams):
        e = E.concrete_bias_estimates(f, np.zeros(4), lam, np.random.default_rng(40 + i), 1_000_000)
        s = E.estimator_summary(e, 0.0)
        vec.append(s["mean"])
        vec_se.append(np.sqrt(e.var(axis=0, ddof=1) / len(e)))
        b2.append(s["bias2"])
        b2_se.append(s["bias2_se"])
    return lams, np.array(vec), np.array(vec_se), np.array(b2), np.array(b2_se)


def test_bias_exponent_check_passes_at_two_and_fails_at_one_and_three(small_temperature_bias):
    lams, _, _, b2, b2_se = small_temperature_bias
    slope, se, _ = rt.loglog_slope(lams, b2, b2_se)
    assert rt.check_exponent("bias", slope, se, 2, 0.3)
    assert not rt.check_exponent("bias", slope, se, 1, 0.3)
    assert not rt.check_exponent("bias", slope, se, 3, 0.3)


def test_bias_exponent_is_four_where_B_vanishes():
    """n = 2 at the uniform posterior: B = 0 and the squared bias has slope 4, so the exponent-2 check fails
    (exact relaxed derivative by quadrature; points with a nominal 1% standard error)."""
    f = lambda z: (z[..., 0] - 0.3) ** 2
    assert abs(rt.bias_leading_term(f, np.zeros(2))[0]) < 1e-12

    def relaxed(t, lam):
        nodes, w = T.logistic_trapezoid(lam / 8)
        return anp.sum(w * (expit((t + nodes) / lam) - 0.3) ** 2)

    lams = np.array([0.04, 0.02, 0.01])
    b2 = np.array([(autograd.grad(relaxed)(0.0, lam) - 0.25 * 0.4) ** 2 for lam in lams])
    slope, se, _ = rt.loglog_slope(lams, b2, 0.01 * b2)
    assert rt.check_exponent("bias", slope, se, 4, 0.3)
    assert not rt.check_exponent("bias", slope, se, 2, 0.3)


def _perturbed_B(c, pi, variant):
    k = pi.size
    eye = np.eye(k)
    out = np.zeros(k)
    for i in range(k):
        for j in range(i + 1, k):
            if variant == "no -2 pi":
                out += c[i, j] * pi[i] * pi[j] * (eye[i] + eye[j])
            elif variant == "pi_i + pi_k":
                out += c[i, j] * (pi[i] + pi[j]) * (eye[i] + eye[j] - 2 * pi)
            elif variant == "half c":
                out += 0.5 * c[i, j] * pi[i] * pi[j] * (eye[i] + eye[j] - 2 * pi)
    return out


@pytest.mark.parametrize("variant", ["no -2 pi", "pi_i + pi_k", "half c"])
def test_bias_constant_check_fails_for_a_perturbed_B(vae, small_temperature_bias, variant):
    model, x = vae
    lams, vec, vec_se, _, _ = small_temperature_bias
    c = rt.boundary_coefficients(_f_rec(model, x), 4)
    B = rt.bias_leading_term(_f_rec(model, x), np.zeros(4), c)
    ratio, ratio_se = vec / lams[:, None], vec_se / lams[:, None]
    assert rt.check_z("B", ratio, ratio_se, B)
    assert not rt.check_z("B", ratio, ratio_se, _perturbed_B(c, np.full(4, 0.25), variant))


def test_bias_estimator_check_fails_without_subtracting_the_discrete_value(vae):
    """(f(X) - f(D))(1 - e^{-G}) measures the pathwise estimator's bias; f(X)(1 - e^{-G}) alone does not."""
    model, x = vae
    f = _f_rec(model, x)
    alpha, lam = np.zeros(4), 0.447
    g_rec = T.discrete_elbo_gradient(model, x, alpha, "reconstruction")
    path = T.relaxed_elbo_gradient_estimates(model, x, alpha, lam, 2 / 3 * lam, np.random.default_rng(5), 50_000, 4,
                                             part="reconstruction")
    path_bias, path_se = path.mean(0) - g_rec, path.std(0, ddof=1) / np.sqrt(len(path))
    good = E.concrete_bias_estimates(f, alpha, lam, np.random.default_rng(6), 300_000)
    wrong = E.gumbel_score_estimates(f, alpha, lam, np.random.default_rng(6), 300_000)
    for est, expected in [(good, True), (wrong, False)]:
        se = np.hypot(est.std(0, ddof=1) / np.sqrt(len(est)), path_se)
        assert bool(rt.check_z("same bias", est.mean(0), se, path_bias)) is expected


# --------------------------------------------------------------------- 5.9: the variance
@pytest.fixture(scope="module")
def variance_fit(vae):
    model, x = vae
    lams = np.array([0.01, 0.02, 0.04, 0.08])
    v, s = zip(*[E.total_variance(T.relaxed_elbo_gradient_estimates(
        model, x, np.zeros(4), lam, 2 / 3 * lam, np.random.default_rng(60 + i), 200_000, 1, part="reconstruction"))
        for i, lam in enumerate(lams)])
    return lams, np.array(v), np.array(s)


def _perturbed_V1(f, variant):
    pi = np.full(4, 0.25)
    grad_f = autograd.grad(f)
    total = 0.0
    for i in range(4):
        for j in range(i + 1, 4):
            def integrand(t):
                z = np.zeros(4)
                z[i], z[j] = expit(t), expit(-t)
                h = grad_f(z)
                w = expit(t) * expit(-t)
                return (w if variant == "sigma not squared" else w**2) * (h[i] - h[j]) ** 2
            factor = 1.0 if variant == "no factor 2" else 2.0
            total += factor * pi[i] * pi[j] * integrate.quad(integrand, -60, 60, limit=400)[0]
    return total


@pytest.mark.parametrize("variant", ["no factor 2", "sigma not squared"])
def test_variance_constant_check_fails_for_a_perturbed_V1(vae, variance_fit, variant):
    model, x = vae
    lams, v, s = variance_fit
    coef, cov = rt.weighted_fit(np.stack([1 / lams, np.ones_like(lams)], -1), v, s)
    V1 = rt.variance_leading_term(_f_rec(model, x), np.zeros(4))
    assert V1 == pytest.approx(_perturbed_V1(_f_rec(model, x), "correct"), rel=1e-8)
    assert rt.check_z("A = V1", coef[0], np.sqrt(cov[0, 0]), V1)
    assert not rt.check_z("A = V1", coef[0], np.sqrt(cov[0, 0]), _perturbed_V1(_f_rec(model, x), variant))


def test_variance_exponent_check_passes_at_minus_one_and_fails_at_zero_and_minus_two(variance_fit):
    lams, v, s = variance_fit
    slope, se, _ = rt.loglog_slope(lams, v, s)
    assert rt.check_exponent("variance", slope, se, -1, 0.1)
    assert not rt.check_exponent("variance", slope, se, 0, 0.1)
    assert not rt.check_exponent("variance", slope, se, -2, 0.1)


# --------------------------------------------------------------------- 5.10: the KL term
@pytest.fixture(scope="module")
def kl_setup(vae):
    model, x = vae
    g = sample_gumbel((20_000, 1, 4), np.random.default_rng(30))
    return model, x, g


def test_ratio_invariance_check_fails_when_the_temperatures_keep_their_difference(kl_setup):
    model, x, g = kl_setup
    alpha = np.zeros(4)
    grad = lambda l1, l2: T.relaxed_elbo_gradient_estimates(model, x, alpha, l1, l2, None, len(g), 1, part="kl",
                                                            gumbels=g)
    ref = grad(1.0, 2 / 3)
    assert rt.check_tolerance("ratio", grad(0.02, 2 / 3 * 0.02) - ref, 1e-9)
    assert not rt.check_tolerance("ratio", grad(10.0, 10.0 - 1 / 3) - ref, 1e-9)


def _kl_term_perturbed(prior, alpha, r, g, variant):
    lsm = lambda v: v - logsumexp(v, axis=-1, keepdims=True)
    n = prior.shape[-1]
    lead = {"n log r": n, "r squared": n - 1}.get(variant, n - 1) * np.log(r)
    rr = r**2 if variant == "r squared" else r
    return lead + np.sum(lsm(prior - rr * (alpha + g)), -1) - np.sum(lsm(-g), -1)


@pytest.mark.parametrize("variant", ["n log r", "r squared"])
def test_kl_closed_form_check_fails_for_a_perturbed_formula(kl_setup, variant):
    model, x, g = kl_setup
    alpha = np.array([0.3, -0.2, 1.0, 0.0])
    value = T.relaxed_elbo_values(model, x, alpha, 1.0, 2 / 3, g[:, 0], part="kl")
    assert rt.check_tolerance("(5.6)", value - T.relaxed_kl_term(model.prior_logits, alpha, 2 / 3, g[:, 0]), 1e-9)
    assert not rt.check_tolerance("(5.6)", value - _kl_term_perturbed(model.prior_logits, alpha, 2 / 3, g[:, 0], variant),
                                  1e-9)


@pytest.mark.parametrize("variant", ["n - 1", "no factor r", "r squared"])
def test_kl_gradient_check_fails_for_a_perturbed_formula(kl_setup, variant):
    model, x, g = kl_setup
    alpha, r = np.array([0.3, -0.2, 1.0, 0.0]), 2 / 3
    auto = T.relaxed_elbo_gradient_estimates(model, x, alpha, 1.0, r, None, len(g), 1, part="kl", gumbels=g)
    assert rt.check_tolerance("(5.7)", auto - T.relaxed_kl_term_gradient(model.prior_logits, alpha, r, g[:, 0]), 1e-9)
    v = model.prior_logits - (r**2 if variant == "r squared" else r) * (alpha + g[:, 0])
    soft = np.exp(v - logsumexp(v, axis=-1, keepdims=True))
    n = 3 if variant == "n - 1" else 4
    wrong = -(1.0 if variant == "no factor r" else r) * (1 - n * soft)
    assert not rt.check_tolerance("(5.7)", auto - wrong, 1e-9)


def test_kl_gradient_range_check_fails_for_a_doubled_gradient(kl_setup):
    model, _, g = kl_setup
    r = 2 / 3
    grad = T.relaxed_kl_term_gradient(model.prior_logits, np.zeros(4), r, g[:, 0])
    in_range = lambda v: bool(np.all(v >= -r - 1e-12) and np.all(v <= 3 * r + 1e-12))
    assert in_range(grad)
    assert not in_range(1.5 * grad)


def test_kl_slope_at_zero_check_fails_for_a_perturbed_slope(kl_setup):
    """(bias^2(r) - |g|^2)/r at r = 1e-3 against 2 (1 - n P_a)^T g = -2 J; without the factor 2, or with the
    one-sided KL(P_a || u) in place of the symmetric sum, the check fails."""
    model, x, g = kl_setup
    alpha = np.zeros(4)
    g_kl = T.discrete_elbo_gradient(model, x, alpha, "kl")
    r = 1e-3
    mean = T.relaxed_kl_term_gradient(model.prior_logits, alpha, r, g[:, 0]).mean(0)
    measured = (np.sum((mean - g_kl) ** 2) - np.sum(g_kl**2)) / r
    slope = rt.kl_bias2_slope_at_zero(model.prior_logits, alpha)
    assert slope == pytest.approx(-2 * rt.jeffreys_to_uniform(model.prior_logits), rel=1e-12)
    pa = np.exp(model.prior_logits - logsumexp(model.prior_logits))
    one_sided = -2 * float(np.sum(pa * np.log(4 * pa)))
    assert rt.check_tolerance("slope", measured - slope, 0.02)
    assert not rt.check_tolerance("slope", measured - slope / 2, 0.02)
    assert not rt.check_tolerance("slope", measured - one_sided, 0.02)


def test_kl_limit_check_fails_if_the_gradient_lacked_its_factor_r(kl_setup):
    """At r = 0.01 the squared bias is within 10% of |g|^2 because (5.7) is proportional to r."""
    model, x, g = kl_setup
    alpha, r = np.zeros(4), 0.01
    g_kl = T.discrete_elbo_gradient(model, x, alpha, "kl")
    limit = np.sum(g_kl**2)
    grad = T.relaxed_kl_term_gradient(model.prior_logits, alpha, r, g[:, 0])
    within = lambda mean: abs(np.sum((mean - g_kl) ** 2) / limit - 1) < 0.1
    assert within(grad.mean(0))
    assert not within(grad.mean(0) / r)


# --------------------------------------------------------------------- exercises
def test_binary_exercise_check_fails_without_the_one_minus_two_sigma_factor():
    f = lambda z: (z[..., 0] - 0.3) ** 2

    def relaxed(t, lam):
        nodes, w = T.logistic_trapezoid(lam / 8)
        return anp.sum(w * (expit((t + nodes) / lam) - 0.3) ** 2)

    lam, t = 0.01, 1.0
    bias_over_lam = (autograd.grad(relaxed)(t, lam) - expit(t) * expit(-t) * 0.4) / lam
    b = rt.bias_leading_term(f, np.array([t, 0.0]))[0]
    c12 = rt.boundary_coefficients(f, 2)[0, 1]
    assert b == pytest.approx(c12 * expit(t) * expit(-t) * (1 - 2 * expit(t)), rel=1e-12)
    assert abs(bias_over_lam / b - 1) < 0.02
    assert not abs(bias_over_lam / (c12 * expit(t) * expit(-t)) - 1) < 0.02


@pytest.mark.parametrize("variant", ["no minus |grad|^2", "norm 1"])
def test_score_variance_exercise_check_fails_for_a_perturbed_formula(vae, variant):
    model, x = vae
    alpha = model.prior_logits
    ell = lambda d: T.learning_signal(model, x, d, alpha)
    beta = float(T.discrete_elbo(model, x, alpha))
    mc, se = E.total_variance(T.elbo_score_function_estimates(model, x, alpha, np.random.default_rng(104), 200_000, 1,
                                                              beta))
    exact = E.score_function_variance(ell, alpha, beta)
    assert rt.check_z("variance", mc, se, exact)
    pi = E.categorical_probs(alpha)
    vals = np.array([float(ell(e)) for e in np.eye(4)])
    grad = pi * (vals - pi @ vals)
    norm2 = np.ones(4) if variant == "norm 1" else 1 - 2 * pi + pi @ pi
    wrong = np.sum(pi * (vals - beta) ** 2 * norm2) - (0 if variant == "no minus |grad|^2" else grad @ grad)
    assert not rt.check_z("variance", mc, se, wrong)


# --------------------------------------------------------- the package functions, independently checked
def test_boundary_coefficients_by_direct_quadrature():
    f = lambda z: anp.log(1.0 + z[..., 0] + 2.0 * z[..., 1] ** 2 + 0.5 * z[..., 2])
    c = rt.boundary_coefficients(f, 3)
    ends = [float(f(e)) for e in np.eye(3)]
    direct = integrate.quad(lambda t: float(f(np.array([0.0, expit(t), expit(-t)]))) - (ends[1] if t > 0 else ends[2]),
                            -50, 50, points=[0.0], limit=400)[0]
    assert c[1, 2] == pytest.approx(direct, rel=1e-7)
    assert np.allclose(c, c.T) and np.all(np.diag(c) == 0)


def test_objective_leading_term_against_the_exact_relaxed_objective_k2():
    """n = 2: (F_lambda - F)/lambda -> sum c pi pi, by exact quadrature of F_lambda at small lambda."""
    f = lambda z: (z[..., 0] - 0.3) ** 2 + z[..., 1] ** 3
    t = 0.7
    lead = rt.objective_bias_leading_term(f, np.array([t, 0.0]))
    discrete = expit(t) * f(np.eye(2)[0]) + expit(-t) * f(np.eye(2)[1])
    nodes, w = T.logistic_trapezoid(0.001 / 8)
    z1 = expit((t + nodes) / 0.001)
    relaxed = np.sum(w * f(np.stack([z1, 1 - z1], -1)))
    assert (relaxed - discrete) / 0.001 == pytest.approx(lead, rel=0.01)


def test_gumbel_score_estimates_equal_pathwise_and_exact_gradients(vae):
    """f(X)(1 - e^{-G}) is unbiased for the relaxed gradient; at a tiny temperature, for the discrete one."""
    model, x = vae
    f = _f_rec(model, x)
    alpha = np.array([0.3, -0.2, 1.0, 0.0])
    path = E.concrete_estimates(f, alpha, 0.7, np.random.default_rng(1), 200_000)
    score = E.gumbel_score_estimates(f, alpha, 0.7, np.random.default_rng(2), 400_000)
    z = np.abs(path.mean(0) - score.mean(0)) / np.hypot(path.std(0) / np.sqrt(len(path)), score.std(0) / np.sqrt(len(score)))
    assert z.max() < 4.5
    exact = E.exact_gradient(f, alpha)
    bias = E.concrete_bias_estimates(f, alpha, 0.7, np.random.default_rng(2), 400_000)
    assert np.allclose(score.mean(0) - bias.mean(0), E.gumbel_score_estimates(
        lambda z: f(E.one_hot(np.argmax(np.log(z), -1), 4)), alpha, 0.7, np.random.default_rng(2), 400_000).mean(0))
    tiny = E.gumbel_score_estimates(f, alpha, 1e-4, np.random.default_rng(3), 400_000)
    assert E.estimator_summary(tiny, exact)["z"] < 4.5


def test_score_function_variance_against_monte_carlo_and_the_optimal_baseline():
    f = lambda d: anp.sum(d * np.array([1.0, -2.0, 0.5]), -1) ** 2 + 3.0
    logits = np.array([0.2, -1.0, 0.7])
    p = E.categorical_probs(logits)
    est = E.score_function_estimates(f, logits, np.random.default_rng(7), 400_000)
    v, se = E.total_variance(est)
    assert abs(v - E.score_function_variance(f, logits)) < 4.5 * se
    vals = np.array([float(f(e)) for e in np.eye(3)])
    w = p * (1 - 2 * p + p @ p)
    best = float(w @ vals / w.sum())
    grid = [E.score_function_variance(f, logits, b) for b in (best - 0.1, best, best + 0.1)]
    assert grid[1] < grid[0] and grid[1] < grid[2]
    assert E.score_function_variance(f, logits, 0.0, num_samples=4) == pytest.approx(E.score_function_variance(f, logits) / 4)


def test_total_variance_matches_the_sum_of_component_variances():
    est = np.random.default_rng(0).standard_normal((1000, 3)) * np.array([1.0, 2.0, 0.5])
    v, se = E.total_variance(est)
    assert v == pytest.approx(float(np.sum(est.var(0, ddof=1))), rel=1e-12)
    assert 0 < se < v


def test_relaxed_multi_sample_bound_mc_agrees_with_quadrature(binary):
    model, x = binary
    alpha = model.posterior_logits(x)
    quad = T.relaxed_multi_sample_bound_quadrature(model, x, alpha, 2 / 3, 0.5, 3)
    v, s = T.relaxed_multi_sample_bound_mc(model, x, alpha, 2 / 3, 0.5, 3, np.random.default_rng(11), 200_000)
    assert abs(v - quad) < 4.5 * s


def test_relaxed_expectation_k2_gradient_is_the_mean_of_the_concrete_estimator(binary):
    model, x = binary
    alpha = np.array([0.4, 0.0])
    grad = autograd.grad(lambda a: T.relaxed_expectation_k2(model, x, a, 0.5, 0.375))(alpha)
    est = T.relaxed_elbo_gradient_estimates(model, x, alpha, 0.5, 0.375, np.random.default_rng(12), 200_000)
    assert E.estimator_summary(est, grad)["z"] < 4.5


def test_weighted_fit_and_loglog_slope_recover_a_known_line():
    x = np.array([0.01, 0.02, 0.04, 0.08])
    y = 3.0 * x**-1
    slope, se, intercept = rt.loglog_slope(x, y, 0.01 * y)
    assert slope == pytest.approx(-1.0, abs=1e-12) and intercept == pytest.approx(np.log(3.0), abs=1e-12)
    assert se == pytest.approx(0.01 / np.sqrt(np.sum((np.log(x) - np.log(x).mean()) ** 2)), rel=1e-9)


def test_checks_report_their_margin():
    c = rt.check_tolerance("claim", [1e-12, -3e-12], 1e-9)
    assert c and str(c) == "claim (max |error| < 1e-09): True" and "3.00e-12" in c.measured
    assert not rt.check_z("z", 1.0, 0.1, 0.0)
    assert rt.check_exponent("e", 2.05, 0.05, 2, 0.3) and not rt.check_exponent("e", 2.05, 0.2, 2, 0.3)
    with pytest.raises(ValueError, match="K = 2"):
        T.relaxed_expectation_k2(T.random_vae(3, 2, 0), np.ones(2), np.zeros(3), 1.0, 1.0)
    with pytest.raises(ValueError, match="m = 1, 2, 3"):
        T.relaxed_multi_sample_bound_quadrature(T.random_vae(2, 2, 0), np.ones(2), np.zeros(2), 1.0, 1.0, 4)
