"""Calibration of the verdict, measured by simulation (docs/calibration.md).

    python -m benchmarks.calibration             # the table in docs/calibration.md, about 12 minutes on one core
    python -m benchmarks.calibration --quick     # fewer trials, same code

Each trial draws what a real study would face, fresh: a test set of ``n`` images with a difficulty
each (uniform on [0, 1]); for each of ``k`` seeds and each of the two training procedures, a run
whose accuracy threshold is the procedure's true accuracy plus a per-run effect (normal, standard
deviation ``spread``: how much runs differ from seed to seed); and per run and image, noise
(normal, standard deviation ``image_noise``) on which images that run happens to get right. An
image is right when its difficulty plus the noise falls below the run's threshold, so a run's
expected accuracy is its threshold and two runs of equal accuracy disagree on about
``1.13 * image_noise`` of the images. The default 0.16 gives the 17-21% disagreement measured
between two ResNet50 runs in the default regime (12-15% for the MLP and CNN). Optionally, a
per-image procedure effect (normal, standard deviation ``image_effect``): some images are easier
for a and harder for b by that much, averaging out over all images but not over one test set, which
is the doubt that the shared test images add.

Under the null both procedures have the same true accuracy (75%): any "supported" or
"contradicted" verdict is false. Power: the share of "supported" when a's threshold is 3 points
higher (its expected accuracy then 2.8 points higher: ``true_delta``).
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
from scipy.stats import t as student_t

from tlstudy import stats

Interval = Callable[[np.ndarray, np.ndarray], tuple[float, float]]


IMAGE_NOISE, ACCURACY = 0.16, 0.75


def simulate(rng: np.random.Generator, seeds: int, spread: float, delta: float, images: int = 5000,
             image_effect: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One study's per-seed, per-image correctness of procedures a and b, shape (seeds, images)."""
    difficulty = rng.random(images)
    effect = rng.normal(0.0, image_effect, images) / 2 if image_effect else 0.0
    threshold_a = ACCURACY + delta + rng.normal(0.0, spread, (seeds, 1))
    threshold_b = ACCURACY + rng.normal(0.0, spread, (seeds, 1))
    correct_a = difficulty - effect + rng.normal(0.0, IMAGE_NOISE, (seeds, images)) < threshold_a
    correct_b = difficulty + effect + rng.normal(0.0, IMAGE_NOISE, (seeds, images)) < threshold_b
    return correct_a, correct_b


def true_delta(delta: float, samples: int = 2_000_000) -> float:
    """The expected accuracy difference that a threshold difference ``delta`` gives (the noise pushes
    some images past the ends of the difficulty range, so it is a little less than ``delta``)."""
    noise = np.random.default_rng(1).normal(0.0, IMAGE_NOISE, samples)
    return float(np.mean(np.clip(ACCURACY + delta - noise, 0, 1) - np.clip(ACCURACY - noise, 0, 1)))


def verdict_rates(interval: Interval, seeds: int, spread: float, delta: float, trials: int, margin: float = 0.01,
                  images: int = 5000, image_effect: float = 0.0, seed: int = 0) -> dict[int, float]:
    """The share of each verdict over ``trials`` simulated studies."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(stats.VERDICT_WORDS, 0)
    for _ in range(trials):
        low, high = interval(*simulate(rng, seeds, spread, delta, images, image_effect))
        counts[stats.verdict(low, high, margin)] += 1
    return {code: count / trials for code, count in counts.items()}


def false_verdict_rate(interval: Interval, seeds: int, spread: float, trials: int, images: int = 5000,
                       image_effect: float = 0.0, seed: int = 0) -> float:
    """Under the null: the share of "supported" or "contradicted"."""
    rates = verdict_rates(interval, seeds, spread, 0.0, trials, images=images, image_effect=image_effect, seed=seed)
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


def _satterthwaite(diff: np.ndarray, terms: list[tuple[float, float]]) -> tuple[float, float]:
    """One t quantile for a sum of variance terms, each (term, its degrees of freedom), with
    Welch-Satterthwaite degrees of freedom (a term may be negative: the residual subtracted)."""
    variance = sum(term for term, _ in terms)
    if variance <= 0:
        return float(diff.mean()), float(diff.mean())
    df = variance ** 2 / sum(term ** 2 / df for term, df in terms)
    half = student_t.ppf(0.975, df) * np.sqrt(variance)
    return float(diff.mean() - half), float(diff.mean() + half)


def satterthwaite_interval(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, float]:
    """The same two variance terms under one t quantile, Welch-Satterthwaite degrees of freedom."""
    diff = np.asarray(correct_a, float) - np.asarray(correct_b, float)
    c = stats.Components.of(diff)
    k, n = diff.shape
    return _satterthwaite(diff, [(c.seed_var / k, k - 1), (c.image_var / n, n - 1)])


def anova_interval(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, float]:
    """The unbiased combination, (MS_seeds + MS_images - MS_residual) / (k n), Satterthwaite's df with
    each mean square on its own degrees of freedom."""
    diff = np.asarray(correct_a, float) - np.asarray(correct_b, float)
    c = stats.Components.of(diff)
    k, n = diff.shape
    return _satterthwaite(diff, [(c.seed_var / k, k - 1), (c.image_var / n, n - 1),
                                 (-c.residual_var / (k * n), (k - 1) * (n - 1))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2000, help="simulated studies per cell")
    parser.add_argument("--previous-trials", type=int, default=300,
                        help="for the previous bootstrap interval (200 resamples each), which is slow")
    parser.add_argument("--quick", action="store_true", help="200 trials per cell (60 for the previous interval)")
    args = parser.parse_args()
    trials, previous_trials = (200, 60) if args.quick else (args.trials, args.previous_trials)
    started = time.perf_counter()
    se = 100 * np.sqrt(0.05 * 0.95 / trials)
    print(f"False verdicts under the null (%, {trials} trials per cell, Monte-Carlo standard error {se:.1f} at 5%; "
          f"the previous interval: {previous_trials} trials of 200 resamples), and power: the share 'supported' "
          f"when a is truly {100 * true_delta(0.03):.1f} points better. 5,000 test images, margin 1 point.\n")
    print("| seeds | seed spread (points) | per-image effect | false, this project (Banerjee) | false, one t, "
          "Satterthwaite df | false, unbiased ANOVA | false, previous bootstrap | power, this project |")
    print("|---|---|---|---|---|---|---|---|")
    cells = [(seeds, spread, 0.0) for seeds in (3, 5, 10) for spread in (0.0, 0.01, 0.02, 0.03, 0.04)]
    cells += [(seeds, 0.02, 0.2) for seeds in (3, 5, 10)]
    for seeds, spread, image_effect in cells:
        cell = dict(seeds=seeds, spread=spread, image_effect=image_effect)
        rates = [false_verdict_rate(method, trials=trials, **cell)
                 for method in (stats.delta_interval, satterthwaite_interval, anova_interval)]
        previous = false_verdict_rate(previous_interval, trials=previous_trials, **cell)
        power = verdict_rates(stats.delta_interval, delta=0.03, trials=trials, **cell)[stats.SUPPORTED]
        print(f"| {seeds} | {100 * spread:.0f} | {image_effect:g} | "
              + " | ".join(f"{100 * r:.1f}" for r in [*rates, previous]) + f" | {100 * power:.1f} |", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
