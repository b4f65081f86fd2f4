"""concrete_ref: a small NumPy/autograd reference for the Concrete distribution.

Maddison, Mnih & Teh, "The Concrete Distribution: A Continuous Relaxation of Discrete Random
Variables", ICLR 2017 (arXiv:1611.00712).  ``logits`` are the paper's log alpha, ``temperature`` its
lambda.  Everything here is NumPy plus autograd; nothing imports torch (the PyTorch reproductions live
in :mod:`concrete_ref.experiments`).
"""

# The public functions, imported on first use (PEP 562): `import concrete_ref` stays fast (the core's
# autograd/scipy imports take about 2 s), so the command lines' --help answers at once.
_LAZY = {
    "ConcreteUnderflowWarning": "concrete",
    "binary_concrete_log_density": "binary",
    "binary_concrete_sample": "binary",
    "concrete_log_density": "concrete",
    "concrete_sample": "concrete",
    "exp_concrete_log_density": "concrete",
    "exp_concrete_sample": "concrete",
    "exp_concrete_transform": "concrete",
    "gumbel_log_density": "gumbel",
    "gumbel_max_sample": "gumbel",
    "logistic_log_density": "binary",
    "logistic_noise_log_density": "gumbel",
    "logistic_sample": "binary",
    "logistic_transform": "binary",
    "sample_gumbel": "gumbel",
    "sample_logistic": "gumbel",
    "sample_uniform": "gumbel",
    "sigmoid": "binary",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
