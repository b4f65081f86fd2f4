"""The experiment command lines refuse bad flag values before any work (issue 19 §3): argparse usage
errors (exit 2) naming the flag, nothing read or written; good values (the boundaries included) still run."""

import json
import math

import pytest

torch = pytest.importorskip("torch")

from concrete_ref.experiments import cli, density, structured  # noqa: E402
from concrete_ref.experiments.flags import validate_args  # noqa: E402
from concrete_ref.experiments.notation import normalise_notation, parse_notation  # noqa: E402

MAINS = {"density": density.main, "structured": structured.main}
MODELS = {"density": "20H-784V", "structured": "392V-24H-392V"}


def _args(tmp_path, task="density", *extra):
    return ["--dataset", "synthetic", "--model", MODELS[task], "--preset", "smoke", "--threads", "1",
            "--run-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"), "--no-progress", *extra]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a refused command got as far as any work (code state, data, training)."""
    def forbidden(*a, **k):
        raise AssertionError("work started before the flags were validated")

    monkeypatch.setattr(cli, "experiment_process", forbidden)
    monkeypatch.setattr(cli, "load_dataset", forbidden)
    monkeypatch.setattr(cli, "code_state", forbidden)


def _case(flag, *extra, task="density", id=None):
    return pytest.param(task, list(extra), flag, id=id or f"{task}:{' '.join(extra)}"[:60])


BAD = [
    # the list: NaN/untrained results, silent default, hang, late failures, division by zero
    _case("--learning-rate", "--learning-rate", "inf"),
    _case("--learning-rate", "--learning-rate", "nan"),
    _case("--learning-rate", "--learning-rate", "0"),
    _case("--learning-rate", "--learning-rate", "-3e-4"),
    _case("--learning-rate", "--lr", "1e-45", id="density:--lr 1e-45 (zero in float32)"),
    _case("--learning-rate", "--learning-rate", "1e30", id="density:--learning-rate 1e30 (NaN at step 1)"),
    _case("--learning-rate", "--learning-rate", "1.5", task="structured"),
    _case("--posterior-temperature", "--posterior-temperature", "nan"),
    _case("--posterior-temperature", "--posterior-temperature", "0"),
    _case("--posterior-temperature", "--posterior-temperature", "-0.5"),
    _case("--prior-temperature", "--prior-temperature", "inf"),
    _case("--prior-temperature", "--prior-temperature", "0"),
    _case("--weight-decay", "--weight-decay", "nan"),
    _case("--weight-decay", "--weight-decay", "inf"),
    _case("--weight-decay", "--weight-decay", "-1e-3"),
    _case("--steps", "--steps", "0"),
    _case("--steps", "--steps", "-1"),
    _case("--steps", "--steps", str(2**70)),
    _case("--batch-size", "--batch-size", "-1"),
    _case("--batch-size", "--batch-size", "0"),
    _case("--train-examples", "--train-examples", "0"),
    _case("--train-examples", "--train-examples", "-10"),
    _case("--eval-chunk", "--eval-chunk", "0"),
    _case("--eval-samples-test", "--eval-samples-test", "0"),
    _case("--eval-samples-train", "--eval-samples-train", "0"),
    _case("--eval-examples", "--eval-examples", "-1"),
    _case("--eval-examples", "--eval-examples", "0"),
    _case("--eval-train-examples", "--eval-train-examples", "0"),
    _case("--checkpoint-every", "--checkpoint-every", "0"),
    _case("--valid-every", "--valid-every", "-1"),
    _case("--threads", "--threads", "0"),
    _case("--threads", "--threads", "-1"),
    _case("--threads", "--threads", str(2**40)),
    _case("--seed", "--seed", str(2**64)),
    _case("--seed", "--seed", "-1"),
    _case("--samples", "--samples", "0"),
    _case("--samples", "-m", "-2"),
    # combinations
    _case("--estimator", "--estimator", "vimco", "--samples", "1"),
    _case("--estimator", "--estimator", "nvil", "--samples", "5"),
    _case("--fresh", "--resume", "--fresh"),
    _case("--results-dir", "--publish"),  # _args passes --results-dir; --publish would ignore it
    # models: visible layer vs the data, the task, and strings that must not become file names
    _case("--model", "--model", "200H-100V"),
    _case("--model", "--model", "200H-785V"),
    _case("--model", "--model", "392V-240H-392V"),
    _case("--model", "--model", "200H\n-784V", id="density:model with a newline"),
    _case("--model", "--model", "200H-784V\n", id="density:model with a trailing newline"),
    _case("--model", "--model", "200H\t-784V", id="density:model with a tab"),
    _case("--model", "--model", "200H - 784V", id="density:model with spaces"),
    _case("--model", "--model", " 200H-784V", id="density:model with a leading space"),
    _case("--model", "--model", "200H-784V\u00a0", id="density:model with a no-break space"),
    _case("--model", "--model", "\uff12\uff10\uff10H-784V", id="density:model with full-width digits"),
    _case("--model", "--model", "\u0662\u0660\u0660H-784V", id="density:model with Arabic-Indic digits"),
    _case("--model", "--model", "200H-784V\u200b", id="density:model with a zero-width space"),
    _case("--model", "--model", "200\u0397-784V", id="density:model with a Greek capital eta for H"),
    _case("--model", "--model", "0200H-784V"),
    _case("--model", "--model", "200H-0784V"),
    _case("--model", "--model", "0H-784V"),
    _case("--model", "--model", "000H-784V"),
    _case("--model", "--model", "-".join(["2H"] * 70) + "-784V", id="density:model of 214 characters"),
    _case("--model", "--model", "200Q-784V"),
    _case("--model", "--model", ""),
    _case("--model", "--model", "200H~784V", "--arity", "8"),
    _case("--model", "--model", "392V-240H-784V", task="structured"),
    _case("--model", "--model", "784V-240H-392V", task="structured"),
    _case("--model", "--model", "200H-784V", task="structured"),
    _case("--posterior-temperature", "--posterior-temperature", "0", task="structured"),
    _case("--eval-chunk", "--eval-chunk", "0", task="structured"),
]


@pytest.mark.parametrize("task,extra,flag", BAD)
def test_bad_flag_is_a_usage_error_before_any_work(tmp_path, capsys, no_work, task, extra, flag):
    with pytest.raises(SystemExit) as exc:
        MAINS[task](_args(tmp_path, task, *extra))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and f"error: argument {flag}" in err, err
    assert list(tmp_path.iterdir()) == []  # neither the run folder nor the results folder was created


@pytest.mark.parametrize("dest", ["run_dir", "results_dir"])
def test_run_and_results_dirs_must_not_be_files(tmp_path, capsys, no_work, dest):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    flag = "--" + dest.replace("_", "-")
    with pytest.raises(SystemExit) as exc:
        density.main(_args(tmp_path) + [flag, str(blocker)])
    assert exc.value.code == 2 and f"error: argument {flag}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize("flag,value,ok", [
    ("--valid-samples", "0", "1"), ("--valid-examples", "-1", "1"), ("--valid-samples", str(2**63), "5"),
])
def test_flags_the_parser_may_gain_are_checked_too(flag, value, ok, capsys):
    """``--valid-samples``/``--valid-examples`` (preset fields) are validated whenever the parser has them."""
    parser = cli.build_parser("density")
    if flag not in parser._option_string_actions:
        parser.add_argument(flag, type=int)
    with pytest.raises(SystemExit) as exc:
        validate_args(parser, parser.parse_args([flag, value, "--dataset", "synthetic"]), "density")
    assert exc.value.code == 2 and f"error: argument {flag}" in capsys.readouterr().err
    validate_args(parser, parser.parse_args([flag, ok, "--dataset", "synthetic"]), "density")


def test_error_names_the_accepted_range(tmp_path, capsys, no_work):
    for extra, expect in [(["--steps", "0"], "integer from 1"), (["--valid-every", "-1"], "0 (0: no validation)"),
                          (["--seed", str(2**64)], "0 to 2**63 - 1"), (["--learning-rate", "inf"], "finite number > 0"),
                          (["--weight-decay", "-1"], "finite number >= 0"),
                          (["--model", "200H-100V"], "must be 784V")]:
        with pytest.raises(SystemExit):
            density.main(_args(tmp_path, "density", *extra))
        assert expect in capsys.readouterr().err, extra


# ---------------------------------------------------------------- the notation's canonical form
@pytest.mark.parametrize("text,canonical", [
    ("200H-784V", "200H-784V"), ("200H\u223c200H\u223c784V", "200H~200H~784V"), ("200H\u02dc784V", "200H~784V"),
    ("392V\u2013240H\u2212240H\u2013392V", "392V-240H-240H-392V"), ("1H-1V", "1H-1V"), ("10H-100V", "10H-100V"),
])
def test_notation_is_normalised_to_ascii(text, canonical):
    assert normalise_notation(text) == canonical
    assert parse_notation(text).notation == canonical


@pytest.mark.parametrize("text,match", [
    ("200H -784V", "whitespace"), ("200H-784V\n", "whitespace"), ("\t200H-784V", "whitespace"),
    ("\uff12\uff10\uff10H-784V", "non-ASCII"), ("200H\u2014784V", "non-ASCII"), ("0200H-784V", "leading zero"),
    ("00H-784V", "at least one unit"), ("2H-" * 70 + "784V", "at most 200"), ("", "non-empty"), (None, "non-empty"),
])
def test_notation_refusals(text, match):
    with pytest.raises(ValueError, match=match):
        normalise_notation(text)
    with pytest.raises(ValueError, match=match):
        parse_notation(text)


# ---------------------------------------------------------------- good values still run
def test_good_values_at_the_boundaries_still_run(tmp_path):
    """Boundary values pass: no validation (0), no weight decay (0), the largest seed, one thread, a typographic
    model string (written under its ASCII name), a batch larger than the training subset."""
    seed = 2**63 - 1
    result = density.main(_args(tmp_path, "density", "--model", "20H\u223c784V", "--steps", "3", "--valid-every", "0",
                                "--weight-decay", "0", "--seed", str(seed), "--train-examples", "50",
                                "--batch-size", "64", "--eval-examples", "8", "--eval-chunk", "3",
                                "--checkpoint-every", "1", "--learning-rate", "1e-3"))
    files = list((tmp_path / "results").glob("*.json"))
    assert len(files) == 1 and files[0].name.isascii() and "20Hn784V" in files[0].name
    saved = json.loads(files[0].read_text())
    assert saved["config"]["model"] == "20H~784V" and saved["config"]["seed"] == seed
    assert saved["steps_done"] == 3 and saved["curves"]["valid_bound"] == []
    assert math.isfinite(result["metrics"]["test_nll"]) and 0 < result["metrics"]["test_nll"] < 1000


def test_good_structured_values_still_run(tmp_path):
    result = structured.main(_args(tmp_path, "structured", "--model", "392V\u201324H\u2013392V", "--steps", "3",
                                   "--posterior-temperature", "0.5", "--eval-examples", "8"))
    cfg = result["config"]
    assert cfg["model"] == "392V-24H-392V" and cfg["posterior_temperature"] == cfg["prior_temperature"] == 0.5
    assert [p.name.isascii() for p in (tmp_path / "results").glob("*.json")] == [True]
    assert math.isfinite(result["metrics"]["test_nll"])
