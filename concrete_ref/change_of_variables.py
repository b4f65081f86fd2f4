r"""The Concrete density by a change of variables (the paper's App. A), each step as a function.

With :math:`Z_k = \log\alpha_k + G_k` independent Gumbels with locations :math:`\log\alpha_k`, Eq. (10) is
:math:`X = \operatorname{softmax}(Z/\lambda)`.  Chapter 3 derives the density (11) of
:math:`(X_1, \dots, X_{n-1})` through the invertible map

.. math:: \Psi(z) = (x_1, \dots, x_{n-1}, c), \qquad x_k = e^{z_k/\lambda}/c, \qquad c = \sum_{i=1}^n e^{z_i/\lambda},

whose inverse is (:func:`inverse_map`, Eq. 3.3)

.. math:: \Psi^{-1}(x_1, \dots, x_{n-1}, c) = \big(\lambda(\log x_k + \log c)\big)_{k=1}^n, \qquad x_n = 1 - \sum_{k<n} x_k .

The steps, and the function that computes each one *without* the step's closed form:

* the Jacobian determinant of :math:`\Psi^{-1}` -- by autograd from :func:`inverse_map`
  (:func:`jacobian_determinant`); the closed form (3.4) is :func:`jacobian_determinant_formula`,
  :math:`\lambda^n / (c \prod_{k=1}^n x_k)`;
* the joint density of :math:`(x_{<n}, c)` -- the Gumbel density of :math:`\Psi^{-1}(x, c)` times that
  autograd determinant (:func:`transformed_gumbel_density`); the closed form (3.5) is
  :func:`joint_log_density_formula` (its log),
  :math:`\lambda^n \prod_k \alpha_k x_k^{-\lambda-1} \cdot c^{-n\lambda-1} e^{-S c^{-\lambda}}` with
  :math:`S = \sum_i \alpha_i x_i^{-\lambda}`;
* the integral over :math:`c` -- by quadrature (:func:`gamma_integral`); the closed form (3.6) is
  :func:`gamma_integral_formula`, :math:`\int_0^\infty c^{-n\lambda-1} e^{-Sc^{-\lambda}}\,dc =
  \Gamma(n)/(\lambda S^n)`;
* the marginal density of :math:`x_{<n}` -- :func:`marginal_density` integrates
  :func:`transformed_gumbel_density` over :math:`c` by quadrature.  Nothing in it uses (3.4)-(3.6) or
  (11), so comparing it with ``concrete_log_density`` (:func:`derivation_checks`) can fail.

Everything is NumPy, SciPy and autograd.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import jacobian
from scipy import integrate, optimize
from scipy.special import gammaln

from .checks import Check
from .concrete import concrete_log_density
from .gumbel import gumbel_log_density

__all__ = [
    "inverse_map",
    "jacobian_determinant",
    "jacobian_determinant_formula",
    "transformed_gumbel_log_density",
    "transformed_gumbel_density",
    "joint_log_density_formula",
    "gamma_integral",
    "gamma_integral_formula",
    "marginal_density",
    "derivation_checks",
]


def inverse_map(v, temperature):
    r""":math:`\Psi^{-1}` of Eq. (3.3): ``v = (x_1, ..., x_{n-1}, c)`` to :math:`z_k = \lambda(\log x_k + \log c)`.

    :math:`x_n = 1 - \sum_{k<n} x_k`.  ``v`` has shape ``(n,)``; autograd-traceable.
    """
    x_free, c = v[:-1], v[-1]
    x = anp.concatenate([x_free, anp.reshape(1.0 - anp.sum(x_free), (1,))])
    return temperature * (anp.log(x) + anp.log(c))


def jacobian_determinant(x, c, temperature) -> float:
    r""":math:`|\det \partial\Psi^{-1}/\partial(x_{<n}, c)|`, the Jacobian of :func:`inverse_map` computed by autograd.

    ``x`` is a point of the open simplex, shape ``(n,)`` (only its first ``n - 1`` coordinates enter).
    """
    x = np.asarray(x, dtype=np.float64)
    v = np.append(x[:-1], float(c))
    return float(abs(np.linalg.det(jacobian(inverse_map)(v, float(temperature)))))


def jacobian_determinant_formula(x, c, temperature) -> float:
    r"""The closed form (3.4): :math:`\lambda^n / (c \prod_{k=1}^n x_k)`."""
    x = np.asarray(x, dtype=np.float64)
    return float(temperature ** x.size / (c * np.prod(x)))


def transformed_gumbel_log_density(x, log_c, logits, temperature, jacobian=jacobian_determinant) -> float:
    r"""Log of the joint density of :math:`(x_{<n}, c)`: :math:`\log p_Z(\Psi^{-1}(x, c)) + \log|\det|`.

    :math:`p_Z(z) = \prod_k f(z_k - \log\alpha_k)` with :math:`f` the standard Gumbel density
    (``gumbel_log_density``), and the determinant from ``jacobian`` (autograd by default).  ``log_c`` is
    :math:`\log c` (the integration variable of :func:`marginal_density`).
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        c = np.exp(log_c)
    if not 0.0 < c < np.inf:  # quadrature far out on the line: the density is 0 to double precision there
        return -np.inf
    z = inverse_map(np.append(x[:-1], c), float(temperature))
    if not np.all(np.isfinite(z)):
        return -np.inf
    # x_n of inverse_map is 1 - sum(x_{<n}), which may differ from the given x_n in its last bit
    log_pz = float(np.sum(gumbel_log_density(z - np.asarray(logits, dtype=np.float64))))
    return log_pz + float(np.log(jacobian(x, c, temperature)))


def transformed_gumbel_density(x, c, logits, temperature, jacobian=jacobian_determinant) -> float:
    """The joint density of :math:`(x_{<n}, c)`: exp of :func:`transformed_gumbel_log_density`."""
    with np.errstate(over="ignore", under="ignore"):
        return float(np.exp(transformed_gumbel_log_density(x, np.log(c), logits, temperature, jacobian)))


def joint_log_density_formula(x, c, logits, temperature) -> float:
    r"""The log of the closed form (3.5) of the joint density of :math:`(x_{<n}, c)`.

    :math:`\lambda^n \big(\prod_k \alpha_k x_k^{-\lambda-1}\big)\, c^{-n\lambda-1} \exp(-S c^{-\lambda})`,
    :math:`S = \sum_i \alpha_i x_i^{-\lambda}`.
    """
    x, logits, lam = np.asarray(x, dtype=np.float64), np.asarray(logits, dtype=np.float64), float(temperature)
    n = x.size
    s = np.sum(np.exp(logits) * x**-lam)
    return float(n * np.log(lam) + np.sum(logits - (lam + 1) * np.log(x)) - (n * lam + 1) * np.log(c) - s * c**-lam)


def _integrate_over_line(log_f, epsrel):
    """:math:`\\int_{-\\infty}^\\infty e^{\\log f(s)} ds` for a unimodal log f, split at its maximum."""
    peak = optimize.minimize_scalar(lambda s: -log_f(s), bracket=(-1.0, 1.0)).x
    scale = log_f(peak)  # integrate exp(log f - log f(peak)) so that nothing over- or underflows on its own
    f = lambda s: np.exp(log_f(s) - scale)
    with np.errstate(over="ignore", under="ignore"):
        left = integrate.quad(f, -np.inf, peak, epsabs=0, epsrel=epsrel, limit=200)[0]
        right = integrate.quad(f, peak, np.inf, epsabs=0, epsrel=epsrel, limit=200)[0]
    return (left + right) * np.exp(scale)


def gamma_integral(s, n, temperature, epsrel=1e-12) -> float:
    r""":math:`\int_0^\infty c^{-n\lambda-1} e^{-S c^{-\lambda}}\, dc` by quadrature (over :math:`\log c`)."""
    s, lam = float(s), float(temperature)
    with np.errstate(over="ignore"):
        return _integrate_over_line(lambda t: -n * lam * t - s * np.exp(-lam * t), epsrel)


def gamma_integral_formula(s, n, temperature) -> float:
    r"""The closed form (3.6): :math:`\Gamma(n) / (\lambda S^n)`."""
    return float(np.exp(gammaln(n) - np.log(temperature) - n * np.log(s)))


def marginal_density(x, logits, temperature, epsrel=1e-11) -> float:
    r"""The density of :math:`(X_1, \dots, X_{n-1})` at ``x``, by integrating out :math:`c` numerically.

    :math:`\int_0^\infty p_Z(\Psi^{-1}(x, c))\, |\det J(x, c)|\, dc`, with the determinant from autograd
    (:func:`jacobian_determinant`) and the quadrature over :math:`s = \log c` (:math:`dc = c\, ds`).
    Uses neither (3.4)-(3.6) nor (11).
    """
    with np.errstate(over="ignore", under="ignore"):
        return _integrate_over_line(lambda t: transformed_gumbel_log_density(x, t, logits, temperature) + t, epsrel)


def derivation_checks(rng, ns=(3, 5), temperatures=(0.3, 1.0, 2.5), *, log_density=concrete_log_density,
                      jacobian_formula=jacobian_determinant_formula, joint_formula=joint_log_density_formula,
                      gamma_formula=gamma_integral_formula):
    r"""Each step of the derivation against its closed form, at random cases; returns four :class:`Check`\ s.

    For each :math:`n` in ``ns`` and :math:`\lambda` in ``temperatures``: logits :math:`\sim N(0, 1)` and
    one draw :math:`z` of :math:`Z = \log\alpha + G`, with :math:`(x, c) = \Psi(z)` (a point where the
    joint density is of ordinary size).  Relative errors of

    1. ``jacobian_formula`` (3.4) against the autograd determinant (tolerance ``1e-12``);
    2. ``joint_formula`` (the log of 3.5) against the log of the transformed Gumbel density: the
       difference of the logs, which is the relative error to first order (``1e-10``);
    3. ``gamma_formula`` (3.6) against quadrature (``1e-9``);
    4. ``log_density`` (11) against :func:`marginal_density` (``1e-9``).

    Pass a perturbed formula to see the corresponding check fail.
    """
    worst = {"jacobian": 0.0, "joint": 0.0, "gamma": 0.0, "marginal": 0.0}
    cases = 0
    for n in ns:
        for lam in temperatures:
            logits = rng.normal(size=n)
            z = logits + rng.gumbel(size=n)  # a draw of Z: (x, c) = Psi(z) is a draw from the joint density
            c = float(np.sum(np.exp(z / lam)))
            x = np.exp(z / lam) / c
            rel = lambda a, b: abs(a / b - 1.0)
            worst["jacobian"] = max(worst["jacobian"], rel(jacobian_formula(x, c, lam), jacobian_determinant(x, c, lam)))
            worst["joint"] = max(worst["joint"], abs(joint_formula(x, c, logits, lam)
                                                     - transformed_gumbel_log_density(x, np.log(c), logits, lam)))
            s = np.sum(np.exp(logits) * x**-lam)
            worst["gamma"] = max(worst["gamma"], rel(gamma_formula(s, n, lam), gamma_integral(s, n, lam)))
            worst["marginal"] = max(worst["marginal"], rel(float(np.exp(log_density(x, logits, lam))),
                                                           marginal_density(x, logits, lam)))
            cases += 1
    return [
        Check("(3.4) Jacobian determinant = autograd's", "max relative error", worst["jacobian"], 1e-12, cases=cases),
        Check("(3.5) joint density = Gumbel density x autograd det", "max |difference of logs|", worst["joint"], 1e-10,
              cases=cases),
        Check("(3.6) Gamma integral = quadrature", "max relative error", worst["gamma"], 1e-9, cases=cases),
        Check("Eq. (11) = c integrated out numerically", "max relative error", worst["marginal"], 1e-9, cases=cases),
    ]
