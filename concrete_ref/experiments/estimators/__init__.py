"""Gradient estimators for the discrete-latent models, one module each, registered by name.

An estimator turns a model, a minibatch and ``m`` samples into a loss whose gradient is the estimator
(:class:`~.base.Estimator`). The command lines (``--estimator``), the grid, the result tables and the
chapters take any registered name (:data:`REGISTRY`). To add one, subclass :class:`Estimator` in a new
module of this package, decorate it with :func:`register` and import the module below; see
``book/add_an_estimator.md``.
"""

from .base import REGISTRY, Estimator, get, names, register  # noqa: F401
from . import concrete, nvil, vimco  # noqa: F401,E402  (registration)
from . import arm, disarm, gumbel_rao, rebar, relax, st_gumbel  # noqa: F401,E402  (registration)

__all__ = ["Estimator", "REGISTRY", "get", "names", "register"]
