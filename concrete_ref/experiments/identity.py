"""A run's identity: which settings make it a different run, and whether it is its preset's cell.

A result is *the* ``book`` (or ``paper``) cell of a table only if every setting that changes what it
measures is the preset's.  The cell's coordinates (task, dataset, model, arity, estimator, m,
temperatures, seed, preset) are in its name already; :data:`BUDGET_FIELDS` are the settings that the
preset fixes and a flag may override.  A run with any override is another run: its name carries
``_x<hash>`` of the overrides (:func:`run_name`), its config records them, and the tables never count it
(:func:`is_preset_cell`).  Settings that change only *how* a number is computed, not its distribution
(``checkpoint_every``, ``eval_chunk``, threads, the engine), are not part of the identity.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["BUDGET_FIELDS", "preset_config", "overrides", "is_preset_cell", "run_name"]

#: settings fixed by a preset that change a run's result when overridden
BUDGET_FIELDS = (
    "steps", "batch_size", "learning_rate", "weight_decay", "eval_samples_test", "eval_samples_train",
    "eval_examples", "eval_train_examples", "train_examples", "valid_every", "valid_samples", "valid_examples", "eval_relaxed",
)


def _coordinate_argv(cfg: dict) -> list[str]:
    argv = ["--dataset", cfg["dataset"], "--model", cfg["model"], "--arity", str(cfg["arity"]),
            "--estimator", cfg["estimator"], "--samples", str(cfg["samples"]), "--seed", str(cfg["seed"]),
            "--preset", cfg["preset"], "--posterior-temperature", repr(float(cfg["posterior_temperature"])),
            "--prior-temperature", repr(float(cfg["prior_temperature"]))]
    return argv


def preset_config(cfg: dict) -> dict:
    """The config the preset gives to the cell of ``cfg`` (same coordinates, no budget override)."""
    from . import cli

    args = cli.build_parser(cfg["task"]).parse_args(_coordinate_argv(cfg))
    base, eval_examples = cli.config_from_args(args, cfg["task"])
    import dataclasses

    out = dataclasses.asdict(base)
    if cfg.get("eval_relaxed") and cfg["task"] == "structured" and cfg["estimator"] == "concrete" \
            and cfg["samples"] == 1:
        # the grids evaluate these cells on the relaxed graph too (Figure 4): an extra metric, same run
        out["eval_relaxed"] = True
    return out


def overrides(cfg: dict) -> dict:
    """The budget settings of ``cfg`` that differ from its preset's, ``{field: value}`` (empty for a
    preset cell)."""
    base = preset_config(cfg)
    return {f: cfg.get(f) for f in BUDGET_FIELDS if cfg.get(f) != base.get(f)}


def is_preset_cell(cfg: dict) -> bool:
    """Whether a result with this config may stand as its preset's cell in a table."""
    return not overrides(cfg)


def override_tag(over: dict) -> str:
    """``""`` for no overrides, else ``"_x"`` and 8 hex digits of a hash of them."""
    if not over:
        return ""
    text = json.dumps(over, sort_keys=True, default=str)
    return "_x" + hashlib.sha256(text.encode()).hexdigest()[:8]


def run_name(cfg: dict) -> str:
    """``{task}_{dataset}_{model}[_{n}ary]_{estimator}_m{m}[_t{post}_{prior}]_{preset}[_x{hash}]_s{seed}``."""
    from .cli import default_temperatures

    safe = cfg["model"].replace("~", "n").replace("-", "_")
    ar = "" if cfg["arity"] == 2 else f"_{cfg['arity']}ary"
    temps = (cfg["posterior_temperature"], cfg["prior_temperature"])
    t = "" if temps == default_temperatures(cfg["task"], cfg["arity"]) else f"_t{temps[0]:.4g}_{temps[1]:.4g}"
    return (f"{cfg['task']}_{cfg['dataset']}_{safe}{ar}_{cfg['estimator']}_m{cfg['samples']}{t}_{cfg['preset']}"
            f"{override_tag(overrides(cfg))}_s{cfg['seed']}")
