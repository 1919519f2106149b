import numpy as np
import pytest
from scipy.stats import binomtest

from tlstudy.stats import bootstrap_delta_interval, compare, mcnemar_exact, sentence, verdict


def table(both, only_a, only_b, neither):
    """Per-example correctness arrays with the given 2x2 contingency counts."""
    a = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return np.array(a, bool), np.array(b, bool)


@pytest.mark.parametrize("only_a, only_b", [(10, 3), (3, 10), (0, 7), (25, 25), (40, 12), (1, 0)])
def test_mcnemar_matches_an_exact_binomial_test_on_the_discordant_pairs(only_a, only_b):
    a, b = table(100, only_a, only_b, 20)
    expected = binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(a, b) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_without_discordant_pairs_is_one():
    a, b = table(50, 0, 0, 5)
    assert mcnemar_exact(a, b) == 1.0


def test_bootstrap_interval_covers_the_true_delta_in_at_least_90_percent_of_simulations():
    rng = np.random.default_rng(2024)
    true_delta, covered = 0.05, 0
    for _ in range(200):
        # Three seeds, 400 test images; model a is right with probability 0.75, b with 0.70, paired
        # through a shared per-image difficulty.
        difficulty = rng.random(400)
        a = difficulty[None, :] < 0.75 + rng.normal(0, 0.01, (3, 1))
        b = difficulty[None, :] < 0.70 + rng.normal(0, 0.01, (3, 1))
        flip = rng.random((2, 3, 400)) < 0.1  # some run-to-run noise on individual images
        a, b = a ^ flip[0], b ^ flip[1]
        shift = (0.75 * 0.9 + 0.25 * 0.1) - (0.70 * 0.9 + 0.30 * 0.1)  # expected accuracy after flips
        low, high = bootstrap_delta_interval(a, b, resamples=400, seed=int(rng.integers(1 << 30)))
        covered += low <= shift <= high
    assert shift == pytest.approx(0.8 * true_delta)
    assert covered >= 180, f"covered the true delta in {covered} of 200 simulations"


def test_verdict_three_outcomes():
    assert verdict(0.01, 0.05) == 1
    assert verdict(-0.05, -0.01) == -1
    assert verdict(-0.01, 0.02) == 0


def test_compare_constructed_inputs():
    better = np.ones((3, 200), bool)
    worse = np.zeros((3, 200), bool)
    worse[:, :100] = True
    result = compare(better, worse, seeds=[0, 1, 2], resamples=200)
    assert result["delta"] == pytest.approx(0.5)
    assert result["verdict"] == 1 and result["ci_low"] > 0.4
    assert result["p_value_max"] == pytest.approx(binomtest(100, 100).pvalue)
    assert compare(worse, better, [0, 1, 2], resamples=200)["verdict"] == -1
    assert compare(better, better, [0, 1, 2], resamples=200)["verdict"] == 0


def test_sentence_states_verdict_interval_and_raw_verdict():
    result = {"a": "resnet50_tl", "b": "resnet50_scratch", "accuracy_a": 0.7, "accuracy_b": 0.6, "delta": 0.1,
              "ci_low": 0.05, "ci_high": 0.15, "p_value_per_seed": {"0": 0.001, "1": 0.01}, "p_value_max": 0.01,
              "verdict": 1, "raw": {"delta": 0.5, "ci_low": 0.45, "ci_high": 0.55, "verdict": 1}}
    text = sentence("transfer", result)
    assert text.startswith("transfer (resnet50_tl minus resnet50_scratch): supported; delta +10.0 points")
    assert "[+5.0, +15.0]" in text and "at most 0.01 over 2 seeds" in text
    assert "Without BatchNorm recalibration it would read supported, delta +50.0 points" in text
