"""concrete_ref: a small NumPy/autograd reference for the Concrete distribution.

Maddison, Mnih & Teh, "The Concrete Distribution: A Continuous Relaxation of Discrete Random
Variables", ICLR 2017 (arXiv:1611.00712).  ``logits`` are the paper's log alpha, ``temperature`` its
lambda.  Everything here is NumPy plus autograd; nothing imports torch (the PyTorch reproductions live
in :mod:`concrete_ref.experiments`).
"""

from .binary import (
    binary_concrete_log_density,
    binary_concrete_sample,
    logistic_log_density,
    logistic_sample,
    logistic_transform,
    sigmoid,
)
from .concrete import (
    ConcreteUnderflowWarning,
    concrete_log_density,
    concrete_sample,
    exp_concrete_log_density,
    exp_concrete_sample,
    exp_concrete_transform,
)
from .gumbel import (
    gumbel_log_density,
    gumbel_max_sample,
    logistic_noise_log_density,
    sample_gumbel,
    sample_logistic,
    sample_uniform,
)

__version__ = "0.1.0"

__all__ = [
    "ConcreteUnderflowWarning",
    "binary_concrete_log_density",
    "binary_concrete_sample",
    "concrete_log_density",
    "concrete_sample",
    "exp_concrete_log_density",
    "exp_concrete_sample",
    "exp_concrete_transform",
    "gumbel_log_density",
    "gumbel_max_sample",
    "logistic_log_density",
    "logistic_noise_log_density",
    "logistic_sample",
    "logistic_transform",
    "sample_gumbel",
    "sample_logistic",
    "sample_uniform",
    "sigmoid",
]
