"""torch.distributions against the reference on the same inputs (Chapter 4, section 4.3).

Each test pins a failure of PyTorch's relaxed distributions that the reference does not have, and
checks that where both are finite they agree: a change in PyTorch that fixes (or moves) a failure, or
a regression in the reference, makes one of them fail.
"""

import subprocess
import sys

import numpy as np
import pytest

import concrete_ref as cr

torch = pytest.importorskip("torch")
lc = pytest.importorskip("concrete_ref.library_comparison")


def test_simplex_underflow_nan_in_torch_none_in_ours():
    r = lc.relaxed_categorical_failures(0.05, num_categories=10, num_samples=5000, seed=0, dtype="float32",
                                        count_value_errors=True)
    assert r.zero_coordinate > 0.05 * r.num_samples          # about 15% of samples have an exact 0
    assert r.torch_nan == r.zero_coordinate                  # and each of them is a NaN in torch
    assert r.value_errors == r.simplex_check_failed > 0      # validate_args rejects some of its own samples
    assert r.ours_nan == 0 and r.ours_inf == 0               # log space: every sample finite
    assert r.torch_log_space_nan == 0 and r.max_rel_diff_log_space < 1e-5  # torch's own log space agrees


def test_log_space_parity_float64():
    r = lc.relaxed_categorical_failures(0.5, num_categories=10, num_samples=2000, seed=1, dtype="float64")
    assert r.torch_nan == 0 and r.ours_nan == 0 and r.zero_coordinate == 0
    assert r.max_rel_diff_log_space < 1e-10


def test_logit_relaxed_bernoulli_overflows_where_ours_is_finite():
    torch_value = lc.logit_relaxed_bernoulli_log_prob(-100.0, 30.0, 1.0, dtype="float32")
    assert np.isneginf(torch_value)
    ours32 = cr.logistic_log_density(np.float32(-100.0), np.float32(30.0), np.float32(1.0))
    ours64 = cr.logistic_log_density(-100.0, 30.0, 1.0)
    # exact: log(1) - |d| - 2 log(1 + e^-|d|) with d = 30 + 100 = 130
    assert ours64 == pytest.approx(-130.0, rel=1e-12)
    assert np.isfinite(ours32) and ours32 == pytest.approx(ours64, rel=1e-5)
    # where torch does not overflow, it agrees with us
    y = np.linspace(-20, 20, 41)
    np.testing.assert_allclose(lc.logit_relaxed_bernoulli_log_prob(y, 2.0, 0.7, dtype="float64"),
                               cr.logistic_log_density(y, 2.0, 0.7), rtol=1e-12)


def test_batched_temperature_gives_a_table_in_torch_a_vector_in_ours():
    r = lc.batched_temperature_shapes()
    assert r["torch_exp_relaxed_log_prob_shape"] == (3, 3)
    assert r["torch_relaxed_one_hot_log_prob_shape"] == (3, 3)
    assert r["ours_log_density_shape"] == (3,)
    assert r["diagonal_matches"] and r["off_diagonal_is_mixed_constant"]


def test_bad_temperature_is_rejected():
    with pytest.raises(ValueError, match="temperature"):
        lc.relaxed_categorical_failures(0.0, num_categories=3, num_samples=10)
    with pytest.raises(ValueError, match="temperature"):
        lc.logit_relaxed_bernoulli_log_prob(0.0, 0.0, -1.0)


def test_core_and_comparison_module_import_without_torch():
    code = "import concrete_ref, concrete_ref.library_comparison, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
