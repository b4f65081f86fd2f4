"""Validation of the experiment command lines' flags, before any work (argparse usage errors, exit 2).

:func:`validate_args` runs right after ``parse_args`` (``cli.main``), before the code state is read, data
loaded or anything written.  Each refusal is ``parser.error``: the usage line and one message naming the
flag, the value given and the accepted range, exit status 2.  Without it, bad values ran: ``--learning-rate
inf`` or ``--posterior-temperature nan`` trained to a NaN result, ``--steps 0`` wrote an untrained one,
``--posterior-temperature 0`` was replaced by the default (``config_from_args`` reads ``value or default``),
``--eval-chunk 0`` looped forever, ``--eval-examples -1`` failed after training, ``--checkpoint-every 0``
divided by zero, and a model whose visible layer does not fit the data failed deep inside torch.

What is deliberately left alone (it works): ``--batch-size`` larger than ``--train-examples`` or than the
training set (each minibatch is then the whole, reshuffled, training set), ``--train-examples`` larger than
the training set (all of it is used), and ``--eval-examples`` larger than a split (all of it is evaluated);
none of these is known before the data are loaded, and loading them is work.  Whether ``--resume`` has a
checkpoint to continue, or an existing checkpoint needs ``--resume`` or ``--fresh``, ``cli`` checks itself
once the run's name (and so its folder) is known, still before any training.
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["DATA_DIMENSIONS", "validate_args"]

#: pixels per image of each dataset (binarized 28 x 28); structured prediction observes the top half
#: (the first 392) and predicts the bottom half (``cli.split_top_bottom``)
DATA_DIMENSIONS = {"mnist": 784, "omniglot": 784, "synthetic": 784}

#: the largest integer any count flag accepts (torch reads them as signed 64-bit), and the seed range: the
#: run's generators are seeded with ``seed``, ``seed + 1_000_003`` and ``seed + 2_000_003``, all of which
#: must fit torch's unsigned 64-bit seeds
INT_MAX = 2**63 - 1

# (dest, minimum, what the minimum means or None): count flags, checked when the parser has them and the
# value is given (None = the preset's)
_COUNTS = (
    ("samples", 1, None),
    ("steps", 1, None),
    ("batch_size", 1, None),
    ("eval_samples_test", 1, None),
    ("eval_samples_train", 1, None),
    ("eval_examples", 1, None),
    ("eval_train_examples", 1, None),
    ("eval_chunk", 1, None),
    ("valid_every", 0, "0: no validation"),
    ("valid_samples", 1, None),
    ("valid_examples", 1, None),
    ("checkpoint_every", 1, None),
    ("train_examples", 1, None),
    ("stop_at", 1, None),
)

# (dest, strictly positive): real-valued flags.  Beside finiteness, the value must survive float32 (the
# models' and Adam's arithmetic): a positive value below the smallest normal float32 is flushed to zero
# inside the runs (``cli.subnormals_flushed``) and one above the largest is infinite.
#
# The third field is an upper bound where one follows from the arithmetic: Adam moves every parameter by
# about the learning rate each step, whatever the gradient's scale, so a learning rate above 1 moves the
# models' logits by more than a unit per step and no run converges (1e30 gave a NaN at the first step).
_REALS = (
    ("learning_rate", True, 1.0),
    ("posterior_temperature", True, None),
    ("prior_temperature", True, None),
    ("weight_decay", False, None),
)
_F32 = np.finfo(np.float32)


def _flag(parser, dest: str) -> str | None:
    """The flag's name as the help shows it first (``--samples`` for ``--samples``/``-m``), or None if the
    parser has no such option."""
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            longs = [s for s in action.option_strings if s.startswith("--")]
            return (longs or action.option_strings)[0]
    return None


def _check_counts(parser, args) -> None:
    for dest, low, meaning in _COUNTS:
        flag, value = _flag(parser, dest), getattr(args, dest, None)
        if flag is None or value is None:
            continue
        if not low <= value <= INT_MAX:
            note = f" ({meaning})" if meaning else ""
            parser.error(f"argument {flag}: must be an integer from {low}{note} to {INT_MAX}; got {value}")
    threads = getattr(args, "threads", None)
    if _flag(parser, "threads") and threads is not None:
        cpus = os.cpu_count() or 1
        if not 1 <= threads <= cpus:
            parser.error(f"argument --threads: must be an integer from 1 to {cpus} (the CPUs of this machine; "
                         f"more threads than CPUs only slow the run); got {threads}")
    seed = getattr(args, "seed", None)
    if _flag(parser, "seed") and seed is not None and not 0 <= seed <= INT_MAX:
        parser.error(f"argument --seed: must be an integer from 0 to 2**63 - 1 = {INT_MAX}; got {seed}")


def _check_reals(parser, args) -> None:
    for dest, positive, upper in _REALS:
        flag, value = _flag(parser, dest), getattr(args, dest, None)
        if flag is None or value is None:
            continue
        low = f"> 0 (at least {_F32.tiny:.4g}, the smallest normal float32)" if positive else ">= 0"
        high = f"{_F32.max:.4g} (float32)" if upper is None else f"{upper:g} (Adam's step is about the learning rate)"
        ok = math.isfinite(value) and value <= min(_F32.max, upper or _F32.max) and (
            value >= _F32.tiny if positive else value >= 0)
        if not ok:
            parser.error(f"argument {flag}: must be a finite number {low} and at most {high}; got {value!r}")


def _check_model(parser, args, task: str) -> None:
    """Parse ``--model`` (canonical form back into ``args.model``, the form its file names use), and check
    that it is a model of this task whose visible layers fit the dataset."""
    from .notation import parse_notation

    try:
        spec = parse_notation(args.model, args.arity)
    except ValueError as e:
        parser.error(f"argument --model: {e}")
    args.model = spec.notation
    if spec.conditional != (task == "structured"):
        other = "structured" if spec.conditional else "density"
        kind = "a conditional (structured prediction)" if spec.conditional else "a density"
        parser.error(f"argument --model: {args.model!r} is {kind} model; use python -m "
                     f"concrete_ref.experiments.{other}")
    dim = DATA_DIMENSIONS.get(args.dataset)
    if dim is None:
        return
    if task == "structured":
        half = dim // 2
        context, target = spec.layers[0].units, spec.layers[-1].units
        if (context, target) != (half, half):
            parser.error(f"argument --model: {args.model!r} observes {context} and predicts {target} pixels; "
                         f"structured prediction on {args.dataset} observes the top half of the {dim}-pixel "
                         f"image and predicts the bottom half, so the first (context) and last layers must be "
                         f"{half}V each, e.g. '{half}V-240H-240H-{half}V'")
    elif spec.layers[-1].units != dim:
        parser.error(f"argument --model: the visible layer of {args.model!r} has {spec.layers[-1].units} units; "
                     f"{args.dataset} images have {dim} pixels, so it must be {dim}V, e.g. '200H-{dim}V'")


def _check_combinations(parser, args) -> None:
    estimator, samples = getattr(args, "estimator", None), getattr(args, "samples", None)
    if estimator is not None and samples is not None:
        from . import estimators

        reason = estimators.get(estimator).check_samples(samples)
        if reason:
            parser.error(f"argument --estimator: {reason}")
        reason = estimators.get(estimator).check_arity(getattr(args, "arity", 2))
        if reason:
            parser.error(f"argument --estimator: {reason}")
    if getattr(args, "resume", False) and getattr(args, "fresh", False):
        parser.error("argument --fresh: not allowed with --resume (--resume continues the run's checkpoint, "
                     "--fresh discards it)")
    if getattr(args, "publish", False) and getattr(args, "results_dir", None) is not None:
        parser.error("argument --results-dir: not allowed with --publish (--publish writes into data/results)")
    for dest in ("run_dir", "results_dir"):
        path = getattr(args, dest, None)
        if path is not None and path.exists() and not path.is_dir():
            parser.error(f"argument {_flag(parser, dest)}: {str(path)!r} exists and is not a folder")


def _check_environment(parser) -> None:
    """``CONCRETE_DATA_TIMEOUT``, which the data loader reads (it would raise only once the data is loaded,
    after the run folder and its lock exist)."""
    from .._download import network_timeout

    try:
        network_timeout()
    except ValueError as exc:
        parser.error(str(exc))


def validate_args(parser, args, task: str) -> None:
    """Refuse bad flag values with ``parser.error`` (exit 2) naming the flag and the accepted range.

    Counts are integers >= 1 (``--valid-every`` >= 0, 0 meaning no validation), at most 2**63 - 1;
    ``--threads`` at most the machine's CPUs; ``--seed`` in [0, 2**63 - 1]; the learning rate and
    temperatures finite and > 0 (the learning rate at most 1), the weight decay finite and >= 0 (all within float32's normal range);
    ``--model`` a model of ``task`` in the paper's notation whose visible layers fit ``--dataset`` (its
    canonical ASCII form replaces ``args.model``); vimco with m >= 2, nvil with m = 1; not ``--resume`` with
    ``--fresh``, nor ``--results-dir`` with ``--publish``; ``--run-dir``/``--results-dir`` not existing files; ``CONCRETE_DATA_TIMEOUT``, if set, a valid timeout.
    """
    _check_counts(parser, args)
    _check_reals(parser, args)
    _check_environment(parser)
    _check_model(parser, args, task)
    _check_combinations(parser, args)
