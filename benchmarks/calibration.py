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
MARGIN_THRESHOLD = 0.0107  # a threshold shift whose expected accuracy gain is the 1-point margin (true_delta: 1.003)


def simulate(rng: np.random.Generator, seeds: int, spread: float, delta: float, images: int = 5000,
             image_effect: float = 0.0, tails: float | None = None, diverge: tuple[float, float] | None = None,
             seed_correlation: float = 0.0, class_spread: float = 0.0,
             classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One study's per-seed, per-image correctness of procedures a and b, shape (seeds, images).

    What real runs showed beyond the normal model, each off by default:
    ``tails``: run effects from Student's t with these degrees of freedom (scaled to ``spread``);
    ``diverge``: (probability, points) a run of a collapses by that much, with a's other runs shifted up
    so that the expected difference stays ``delta``; ``seed_correlation``: a and b runs of one seed share
    this correlation of their effects (the same seed draws the same training subset);
    ``class_spread``: each run is better or worse on each of ``classes`` classes by this much (errors
    clustered by class)."""
    difficulty = rng.random(images)
    effect = rng.normal(0.0, image_effect, images) / 2 if image_effect else 0.0

    def run_effects() -> np.ndarray:
        if tails is None:
            return rng.normal(0.0, 1.0, (seeds, 1))
        return rng.standard_t(tails, (seeds, 1)) / np.sqrt(tails / (tails - 2))
    shared = run_effects()
    own_a, own_b = run_effects(), run_effects()
    mix = np.sqrt(1 - seed_correlation ** 2)
    threshold_a = ACCURACY + delta + spread * (seed_correlation * shared + mix * own_a)
    threshold_b = ACCURACY + spread * (seed_correlation * shared + mix * own_b)
    if diverge:
        probability, drop = diverge
        threshold_a = threshold_a + probability * drop - drop * (rng.random((seeds, 1)) < probability)
    if class_spread:
        label = rng.integers(0, classes, images)
        threshold_a = threshold_a + rng.normal(0.0, class_spread, (seeds, classes))[:, label]
        threshold_b = threshold_b + rng.normal(0.0, class_spread, (seeds, classes))[:, label]
    correct_a = difficulty - effect + rng.normal(0.0, IMAGE_NOISE, (seeds, images)) < threshold_a
    correct_b = difficulty + effect + rng.normal(0.0, IMAGE_NOISE, (seeds, images)) < threshold_b
    return correct_a, correct_b


def true_delta(delta: float, samples: int = 2_000_000) -> float:
    """The expected accuracy difference that a threshold difference ``delta`` gives (the noise pushes
    some images past the ends of the difficulty range, so it is a little less than ``delta``)."""
    noise = np.random.default_rng(1).normal(0.0, IMAGE_NOISE, samples)
    return float(np.mean(np.clip(ACCURACY + delta - noise, 0, 1) - np.clip(ACCURACY - noise, 0, 1)))


def verdict_rates(interval: Interval, seeds: int, spread: float, delta: float, trials: int, margin: float = 0.01,
                  images: int = 5000, image_effect: float = 0.0, seed: int = 0, **model) -> dict[int, float]:
    """The share of each verdict over ``trials`` simulated studies (``model``: ``simulate``'s options)."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(stats.VERDICT_WORDS, 0)
    for _ in range(trials):
        low, high = interval(*simulate(rng, seeds, spread, delta, images, image_effect, **model))
        counts[stats.verdict(low, high, margin)] += 1
    return {code: count / trials for code, count in counts.items()}


def flagged_false_rates(seeds: int, spread: float, trials: int, images: int = 5000, seed: int = 0,
                        **model) -> tuple[float, float]:
    """Under the null: the share of false verdicts, and the share of those that the report flags (a run
    that stands out, or a verdict that leaving one seed out changes)."""
    rng = np.random.default_rng(seed)
    false = flagged = 0
    for _ in range(trials):
        a, b = simulate(rng, seeds, spread, 0.0, images, **model)
        code = stats.verdict(*stats.delta_interval(a, b))
        if code in (stats.SUPPORTED, stats.CONTRADICTED):  # the report's flags, as stats.compare sets them
            false += 1
            diff, runs = a.astype(np.int8) - b.astype(np.int8), list(range(seeds))
            without = stats.leave_one_out(diff, runs, 0.01, 0.95).values()
            flips = [word for word in without if word != stats.VERDICT_WORDS[code]]
            standing = stats.standing_out(a.mean(axis=1), runs) or stats.standing_out(b.mean(axis=1), runs)
            flagged += bool(flips or standing)
    return false / trials, flagged / false if false else float("nan")


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
    robustness_table(trials)
    print(f"\n{time.perf_counter() - started:.0f} s")


def robustness_table(trials: int) -> None:
    """Beyond normal runs: what real runs showed. False verdicts under the null (and the share of them
    the report flags), and false "no practical difference" when the truth sits on the margin."""
    print(f"\nBeyond normal runs ({trials} trials per cell, 2 points of seed spread, 5,000 test images): false "
          "verdicts under the null, the share of those flagged in the report (a run that stands out, or a "
          "verdict one seed decides), and false 'no practical difference' at a true delta equal to the margin.\n")
    print("| generative model | seeds | false verdicts | flagged of those | false 'no practical difference' "
          "at delta = margin |")
    print("|---|---|---|---|---|")
    models = {
        "normal runs": {},
        "heavy tails (t, 3 df)": {"tails": 3.0},
        "a diverges by 20 points in 10% of runs": {"diverge": (0.1, 0.2)},
        "seed effects correlated 0.7 between arms": {"seed_correlation": 0.7},
        "errors clustered by class (2 points)": {"class_spread": 0.02},
    }
    for name, model in models.items():
        for seeds in (3, 5, 10):
            false, flagged = flagged_false_rates(seeds, 0.02, trials, **model)
            # The truth on the margin: a's threshold shifted so that its expected accuracy is 1 point higher.
            equivalent = verdict_rates(stats.delta_interval, seeds, 0.02, MARGIN_THRESHOLD, trials,
                                       **model)[stats.NO_PRACTICAL_DIFFERENCE]
            flagged_text = "n/a" if np.isnan(flagged) else f"{100 * flagged:.0f}"
            print(f"| {name} | {seeds} | {100 * false:.1f} | {flagged_text} | {100 * equivalent:.1f} |", flush=True)


if __name__ == "__main__":
    main()
