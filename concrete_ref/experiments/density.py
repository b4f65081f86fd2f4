"""Density estimation (Section 5.2, Table 1): train and evaluate one model from the command line.

Examples::

    python -m concrete_ref.experiments.density --dataset mnist --model 200H-784V \\
        --estimator concrete --samples 5 --preset book --threads 1
    python -m concrete_ref.experiments.density --model "200H~200H~784V" --estimator vimco \\
        --samples 50 --preset paper          # the paper's protocol: 10^7 steps, L_50000
    python -m concrete_ref.experiments.density ... --resume   # continue a killed run

Latent layers are binary by default (``--arity 4`` or ``8`` for App. E).  Temperatures default to the
paper's (App. C.4): posterior/prior 2/3 and 1/2 (binary), 1 and 2/3 (4-ary), 2/3 and 2/5 (8-ary).
Learning rate: 3e-4 for linear and 1e-4 for non-linear models, weight decay 0 (App. D.5).
See :mod:`concrete_ref.experiments.cli` for presets and the choices the paper leaves open.
"""

from .cli import PRESETS, TEMPERATURES, build_parser, config_from_args, load_dataset  # noqa: F401
from .cli import main as _main


def __getattr__(name):  # the trainer on first use: ``--help`` must not wait for torch
    if name == "Trainer":
        from .train import Trainer

        return Trainer
    raise AttributeError(name)


def main(argv=None) -> dict:
    return _main(argv, task="density", description=__doc__)


if __name__ == "__main__":
    main()
