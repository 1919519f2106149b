"""Calibration of the verdict, measured by simulation (README, "Calibration").

    python -m benchmarks.calibration             # the README's table, about 2 minutes on 2 cores
    python -m benchmarks.calibration --quick     # fewer trials, same code

Each trial draws what a real study would face, fresh: a test set of ``n`` images with a difficulty
each (uniform on [0, 1]); for each of ``k`` seeds and each of the two training procedures, a run
whose accuracy threshold is the procedure's true accuracy plus a per-run effect (normal, standard
deviation ``spread``: how much runs differ from seed to seed); and per run and image, noise
(normal, standard deviation ``image_noise``) on which images that run happens to get right. An
image is right when its difficulty plus the noise falls below the run's threshold, so a run's
expected accuracy is its threshold and two runs of equal accuracy disagree on about
``1.13 * image_noise`` of the images. The default 0.16 gives the 17-21% disagreement measured
between two ResNet50 runs in the default regime (12-15% for the MLP and CNN).

Under the null both procedures have the same true accuracy (75%): any "supported" or
"contradicted" verdict is false. Power: the share of "supported" when a is truly 3 points better.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
from scipy.stats import t as student_t

from tlstudy import stats

Interval = Callable[[np.ndarray, np.ndarray], tuple[float, float]]


def simulate(rng: np.random.Generator, seeds: int, spread: float, delta: float, images: int = 5000,
             image_noise: float = 0.16, accuracy: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """One study's per-seed, per-image correctness of procedures a and b, shape (seeds, images)."""
    difficulty = rng.random(images)
    threshold_a = accuracy + delta + rng.normal(0.0, spread, (seeds, 1))
    threshold_b = accuracy + rng.normal(0.0, spread, (seeds, 1))
    correct_a = difficulty + rng.normal(0.0, image_noise, (seeds, images)) < threshold_a
    correct_b = difficulty + rng.normal(0.0, image_noise, (seeds, images)) < threshold_b
    return correct_a, correct_b


def verdict_rates(interval: Interval, seeds: int, spread: float, delta: float, trials: int, margin: float = 0.01,
                  images: int = 5000, seed: int = 0) -> dict[int, float]:
    """The share of each verdict over ``trials`` simulated studies."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(stats.VERDICT_WORDS, 0)
    for _ in range(trials):
        low, high = interval(*simulate(rng, seeds, spread, delta, images))
        counts[stats.verdict(low, high, margin)] += 1
    return {code: count / trials for code, count in counts.items()}


def false_verdict_rate(interval: Interval, seeds: int, spread: float, trials: int, images: int = 5000,
                       seed: int = 0) -> float:
    """Under the null: the share of "supported" or "contradicted"."""
    rates = verdict_rates(interval, seeds, spread, 0.0, trials, images=images, seed=seed)
    return rates[stats.SUPPORTED] + rates[stats.CONTRADICTED]


def previous_interval(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = 200) -> tuple[float, float]:
    """The interval this project used before: a percentile bootstrap resampling seeds, then test images
    independently for each resampled seed. Kept here only to show what the simulation catches."""
    diff = np.asarray(correct_a, np.int8) - np.asarray(correct_b, np.int8)
    k, n = diff.shape
    rng = np.random.default_rng(0)
    deltas = np.empty(resamples)
    for i in range(resamples):
        chosen = rng.integers(0, k, k)
        deltas[i] = diff[chosen[:, None], rng.integers(0, n, (k, n))].mean()
    low, high = np.quantile(deltas, [0.025, 0.975])
    return float(low), float(high)


def _satterthwaite(diff: np.ndarray, seed_term: float, image_term: float) -> tuple[float, float]:
    k, n = diff.shape
    seed_term = max(seed_term, 0.0)
    df = (seed_term + image_term) ** 2 / (seed_term ** 2 / (k - 1) + image_term ** 2 / (n - 1))
    half = student_t.ppf(0.975, df) * np.sqrt(seed_term + image_term)
    return float(diff.mean() - half), float(diff.mean() + half)


def satterthwaite_interval(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, float]:
    """The same two variance terms under one t quantile, Welch-Satterthwaite degrees of freedom."""
    diff = np.asarray(correct_a, float) - np.asarray(correct_b, float)
    c = stats.Components.of(diff)
    return _satterthwaite(diff, c.seed_var / diff.shape[0], c.image_var / diff.shape[1])


def anova_interval(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, float]:
    """The unbiased variance combination (residual mean square subtracted), Satterthwaite's df."""
    diff = np.asarray(correct_a, float) - np.asarray(correct_b, float)
    c = stats.Components.of(diff)
    k, n = diff.shape
    return _satterthwaite(diff, c.seed_var / k - c.residual_var / (k * n), c.image_var / n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2000, help="simulated studies per cell")
    parser.add_argument("--previous-trials", type=int, default=300,
                        help="for the previous bootstrap interval, which is slow")
    parser.add_argument("--quick", action="store_true", help="200 trials per cell (60 for the previous interval)")
    args = parser.parse_args()
    trials, previous_trials = (200, 60) if args.quick else (args.trials, args.previous_trials)
    started = time.perf_counter()
    se = 100 * np.sqrt(0.05 * 0.95 / trials)
    print(f"False verdicts under the null (%, {trials} trials per cell, Monte-Carlo standard error "
          f"{se:.1f} at 5%; the previous interval: {previous_trials} trials), and power for a true +3 points "
          f"(share 'supported'); 5,000 test images, margin 1 point.\n")
    print("| seeds | seed spread (points) | false, this project (Banerjee) | false, Satterthwaite df "
          "| false, unbiased ANOVA | false, previous bootstrap | power at +3, this project |")
    print("|---|---|---|---|---|---|---|")
    for seeds in (3, 5, 10):
        for spread in (0.0, 0.01, 0.02, 0.03, 0.04):
            cell = dict(seeds=seeds, spread=spread)
            project = false_verdict_rate(stats.delta_interval, trials=trials, **cell)
            satterthwaite = false_verdict_rate(satterthwaite_interval, trials=trials, **cell)
            anova = false_verdict_rate(anova_interval, trials=trials, **cell)
            previous = false_verdict_rate(previous_interval, trials=previous_trials, **cell)
            power = verdict_rates(stats.delta_interval, delta=0.03, trials=trials, **cell)[stats.SUPPORTED]
            print(f"| {seeds} | {100 * spread:.0f} | {100 * project:.1f} | {100 * satterthwaite:.1f} "
                  f"| {100 * anova:.1f} | {100 * previous:.1f} | {100 * power:.1f} |", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
