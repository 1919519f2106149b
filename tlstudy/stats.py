"""Paired comparisons of two models on the same test images, over seeds.

Every run of a model is scored on the same test images, and the runs of two models with the same
seed share the training subset (and, for the two ResNet50 arms, the initial head), so the
comparison is paired: by seed, and within a seed by test image.

- delta: mean over seeds of accuracy(a) - accuracy(b).
- Its 95% interval: a two-level bootstrap, resampling seeds, then test images within each seed
  (the same images for both models, which keeps the pairing). It covers both sources of doubt:
  another training run, and another test set.
- Exact McNemar per seed: a two-sided binomial test on the discordant images (a right and b wrong,
  or the reverse). The seeds share their test images, so their tests are dependent and Fisher's or
  Stouffer's combination, which assume independence, would overstate the evidence; we report each
  seed's p-value and their maximum, which is a valid p-value for "the difference is significant
  with every seed" (an intersection-union test).
- verdict: 1 when the interval lies above 0, -1 when below, 0 when it contains 0.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value from per-example correctness of two classifiers."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    n = only_a + only_b
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(only_a, only_b), n, 0.5)))


def bootstrap_delta_interval(correct_a: np.ndarray, correct_b: np.ndarray, confidence: float = 0.95,
                             resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of mean accuracy(a) - accuracy(b); inputs are (seeds, examples) booleans."""
    diff = np.asarray(correct_a, np.int8) - np.asarray(correct_b, np.int8)
    if diff.ndim == 1:
        diff = diff[None, :]
    seeds, n = diff.shape
    rng = np.random.default_rng(seed)
    deltas = np.empty(resamples)
    for i in range(resamples):
        chosen = rng.integers(0, seeds, seeds)
        examples = rng.integers(0, n, (seeds, n))
        deltas[i] = diff[chosen[:, None], examples].mean()
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(deltas, [alpha, 1.0 - alpha])
    return float(low), float(high)


def verdict(low: float, high: float) -> int:
    """1 supported (interval above 0), -1 contradicted (below 0), 0 inconclusive."""
    if low > 0:
        return 1
    if high < 0:
        return -1
    return 0


def compare(correct_a: np.ndarray, correct_b: np.ndarray, seeds: list[int], resamples: int = 2000) -> dict:
    """Everything the hypothesis file says about ``a`` against ``b``: (seeds, examples) correctness."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    acc_a, acc_b = correct_a.mean(axis=1), correct_b.mean(axis=1)
    low, high = bootstrap_delta_interval(correct_a, correct_b, resamples=resamples)
    p_values = [mcnemar_exact(a, b) for a, b in zip(correct_a, correct_b)]
    return {
        "accuracy_a": float(acc_a.mean()),
        "accuracy_b": float(acc_b.mean()),
        "delta": float((acc_a - acc_b).mean()),
        "delta_per_seed": {str(s): float(d) for s, d in zip(seeds, acc_a - acc_b)},
        "ci_low": low,
        "ci_high": high,
        "p_value_per_seed": {str(s): p for s, p in zip(seeds, p_values)},
        "p_value_max": float(max(p_values)),
        "verdict": verdict(low, high),
    }


VERDICT_WORDS = {1: "supported", 0: "inconclusive", -1: "contradicted"}


def sentence(name: str, result: dict) -> str:
    """One sentence for the report: the verdict, the delta, its interval and the p-values."""
    text = (f"{name} ({result['a']} minus {result['b']}): {VERDICT_WORDS[result['verdict']]}; "
            f"delta {100 * result['delta']:+.1f} points of test accuracy "
            f"({100 * result['accuracy_a']:.1f}% against {100 * result['accuracy_b']:.1f}%), "
            f"95% interval [{100 * result['ci_low']:+.1f}, {100 * result['ci_high']:+.1f}], "
            f"exact McNemar p at most {result['p_value_max']:.2g} over {len(result['p_value_per_seed'])} seeds.")
    if "raw" in result:
        raw = result["raw"]
        text += (f" Without BatchNorm recalibration it would read {VERDICT_WORDS[raw['verdict']]}, "
                 f"delta {100 * raw['delta']:+.1f} points [{100 * raw['ci_low']:+.1f}, {100 * raw['ci_high']:+.1f}].")
    return text
