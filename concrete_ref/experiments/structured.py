"""Structured prediction (Section 5.3, the table in Figure 4): predict the bottom half of an MNIST
digit (rows 14-27) from its top half (rows 0-13) through layers of discrete stochastic units.

Examples::

    python -m concrete_ref.experiments.structured --model 392V-240H-240H-392V \\
        --estimator concrete --samples 5 --preset book --threads 1

The objective is L^SP_m = E[log (1/m) sum_i p(bottom | h_i)] with h_i ~ p(h | top): the model's own
conditional prior is the proposal, so no latent densities appear and relaxing means only replacing
the discrete samples by Binary Concrete samples, at the posterior temperature lambda1 (2/3 for binary
units) for the whole graph (App. D.5).  Defaults: learning rate 3e-4 and weight decay 1e-3 (the
paper's Concrete values).  Evaluation: L^SP_100 on the discrete graph.
"""

from .cli import build_parser, config_from_args, load_dataset, split_top_bottom  # noqa: F401
from .cli import main as _main


def __getattr__(name):  # the trainer on first use: ``--help`` must not wait for torch
    if name == "Trainer":
        from .train import Trainer

        return Trainer
    raise AttributeError(name)


def main(argv=None) -> dict:
    return _main(argv, task="structured", description=__doc__)


if __name__ == "__main__":
    main()
