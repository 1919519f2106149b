"""Is training procedure a better than procedure b? Paired comparisons over seeds and test images.

The question is about training procedures, so the unit of replication is the training run (a
seed). Every run of every model is scored on the same ``n`` test images, and runs of two models
with the same seed share their training subset (and, for the ResNet50 arms, the initial head): the
design is a crossed one, seeds by images, and the data are the per-run, per-image differences

    diff[s, i] = correct_a[s, i] - correct_b[s, i]     (k seeds, n images; values -1, 0, 1)

with the estimate ``delta = mean(diff)``, the mean over seeds of the per-seed accuracy differences.

Two sources of doubt, as they are
---------------------------------
Model it as a two-way crossed random-effects design without replication (Clark 1973, "The
language-as-fixed-effect fallacy"; Baayen, Davidson & Bates 2008):

    diff[s, i] = mu + a_s + b_i + e_si

``a_s``: another training run (variance sigma_a^2); ``b_i``: another test image (sigma_b^2), shared by
every seed; ``e_si``: which images one pair of runs happens to get right (sigma_e^2). Then

    Var(delta) = sigma_a^2 / k + sigma_b^2 / n + sigma_e^2 / (k n).

The spread of the per-seed deltas ``d_s`` estimates ``sigma_a^2 + sigma_e^2 / n`` and misses the
shared-image term entirely (all seeds see the same images); the spread of the per-image means over
seeds ``m_i`` estimates ``sigma_b^2 + sigma_e^2 / k``. The interval adds the two, each scaled by the
t quantile of its own degrees of freedom (Banerjee 1961, "On confidence interval for two-means
problem based on separate estimates of variances", Sankhya A 23):

    half-width^2 = t(0.975, k - 1)^2 * s_d^2 / k  +  t(0.975, n - 1)^2 * s_m^2 / n.

With few seeds the seed term dominates and this is the t-interval over the per-seed deltas that
small samples need (a percentile bootstrap over three seeds is little more than their range); with
no seed spread it is the paired t-interval over the test images. Banerjee's combination keeps the
coverage at least nominal whatever the ratio of the two terms; the variance sum counts
``sigma_e^2 / (k n)`` twice, which errs on the wide side too. Two alternatives were measured and
rejected (``benchmarks/calibration.py``, docs/calibration.md): one t quantile with Welch-Satterthwaite
degrees of freedom (Satterthwaite 1946) gave up to 7% false verdicts with 3 seeds, since the seed
term's degrees of freedom are estimated from the same few seeds; the unbiased ANOVA combination
that subtracts the residual mean square (Clark's quasi-F, Satterthwaite's df per mean square) gave
up to 7.3% when images favour one procedure or the other. With one seed the seed term is
unknown: no interval, and the verdict is "inconclusive".

Verdict, with a margin of practical equivalence ``margin`` (Lakens 2017, "Equivalence tests")
---------------------------------------------------------------------------------------------
- "no practical difference" (2): the whole interval lies within [-margin, +margin];
- "supported" (1): otherwise, the interval lies above 0;
- "contradicted" (-1): otherwise, the interval lies below 0;
- "inconclusive" (0): none of these, or fewer than two seeds.
(0, 1 and -1 keep the meaning they had before the margin existed, so older results read the same.)

Seeds needed: the smallest number of seeds whose expected half-width is at most the margin, which
an interval within [-margin, +margin] needs (when the delta is near 0; it is not always enough). The
expected half-width with ``k'`` seeds keeps the observed spread of the per-seed deltas and moves the
image term by its residual part: ``s_d^2 / k'`` and ``(max(0, s_m^2 - MSE / k) + MSE / k') / n``,
which at ``k' = k`` is the observed half-width. ``None`` when the image term alone is wider than
the margin (more seeds cannot help: the test set is too small), or past ``MAX_SEEDS``.

McNemar: an exact test per seed says whether two trained networks differ on this test set. It says
nothing about another training run, so it informs and never decides.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import binom, chi2, norm
from scipy.stats import t as student_t

SUPPORTED, INCONCLUSIVE, CONTRADICTED, NO_PRACTICAL_DIFFERENCE = 1, 0, -1, 2
VERDICT_WORDS = {SUPPORTED: "supported", NO_PRACTICAL_DIFFERENCE: "no practical difference",
                 CONTRADICTED: "contradicted", INCONCLUSIVE: "inconclusive"}
MAX_SEEDS = 200  # "seeds needed" searches up to here
PRIMARY = "transfer"  # the research question; every other comparison is secondary, unadjusted
OUTLIER_FALSE_RATE = 0.05  # the share of arms of k normal runs in which some run would stand out
POWER = 0.8  # the power "seeds for power" plans for


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value from per-example correctness of two classifiers."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    n = only_a + only_b
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(only_a, only_b), n, 0.5)))


@dataclass(frozen=True)
class Components:
    """Variance pieces of the crossed design, from a (seeds, images) array of differences."""

    seeds: int
    images: int
    seed_var: float  # s_d^2: variance of the per-seed deltas (ddof 1); nan with one seed
    image_var: float  # s_m^2: variance of the per-image means over seeds (ddof 1)
    residual_var: float  # sigma_e^2: the residual mean square; nan with one seed

    @classmethod
    def of(cls, diff: np.ndarray) -> "Components":
        diff = np.asarray(diff, float)
        k, n = diff.shape
        per_seed, per_image = diff.mean(axis=1), diff.mean(axis=0)
        image_var = float(per_image.var(ddof=1))
        if k < 2:
            return cls(k, n, float("nan"), image_var, float("nan"))
        residual = diff - per_seed[:, None] - per_image[None, :] + diff.mean()
        residual_var = float((residual ** 2).sum() / ((k - 1) * (n - 1)))
        return cls(k, n, float(per_seed.var(ddof=1)), image_var, residual_var)

    def half_width(self, confidence: float = 0.95) -> float:
        """sqrt(t(k-1)^2 s_d^2 / k + t(n-1)^2 s_m^2 / n); nan with one seed."""
        return _half_width(self.seed_var / self.seeds, self.seeds - 1, self.image_var / self.images,
                           self.images - 1, confidence)

    def _image_term(self, seeds: int) -> float:
        """s_m^2 / n as it would be with ``seeds`` seeds: the shared-image part stays, the residual part
        shrinks with more seeds."""
        image_part = max(0.0, self.image_var - self.residual_var / self.seeds)
        return (image_part + self.residual_var / seeds) / self.images

    def expected_half_width(self, seeds: int, confidence: float = 0.95) -> float:
        """The half-width expected with ``seeds`` seeds on the same test images (equal to the observed
        one at the observed number of seeds, up to the image part's floor at 0)."""
        return _half_width(self.seed_var / seeds, seeds - 1, self._image_term(seeds), self.images - 1, confidence)

    def image_half_width(self, confidence: float = 0.95) -> float:
        """What the shared test images alone leave, however many seeds: the floor of the half-width."""
        return _half_width(0.0, 1, self._image_term(MAX_SEEDS), self.images - 1, confidence)

    def seeds_needed(self, margin: float, confidence: float = 0.95) -> int | None:
        """The fewest seeds (at least 2) whose expected half-width is at most ``margin``."""
        if self.seeds < 2 or self.image_half_width(confidence) > margin:
            return None
        for seeds in range(2, MAX_SEEDS + 1):
            if self.expected_half_width(seeds, confidence) <= margin:
                return seeds
        return None


    def power(self, seeds: int, delta: float, margin: float, confidence: float = 0.95) -> tuple[float, float]:
        """With ``seeds`` seeds on the same test images, approximately: the chance that the interval
        excludes zero when the truth is ``delta``, and the chance that it lies within the margin when
        the truth is zero. The estimate is taken as normal around the truth with the expected variance
        (seed term and image term), the interval's half-width as its expected one."""
        sd = np.sqrt(self.seed_var / seeds + self._image_term(seeds))
        half = self.expected_half_width(seeds, confidence)
        if not (np.isfinite(sd) and np.isfinite(half)) or sd == 0:
            return float("nan"), float("nan")
        exclude = float(norm.cdf((abs(delta) - half) / sd))
        equivalent = float(max(0.0, 2 * norm.cdf((margin - half) / sd) - 1)) if margin > half else 0.0
        return exclude, equivalent

    def seeds_for_power(self, delta: float, margin: float, confidence: float = 0.95,
                        power: float = POWER) -> dict:
        """The fewest seeds (up to ``MAX_SEEDS``; null past it) giving ``power``: to exclude zero if the
        truth is the observed ``delta``, and to show no practical difference if the truth is zero. Each
        as a range too, from the seed variance's own ``confidence`` interval (chi-square, k - 1 degrees
        of freedom): with few seeds, the spread behind the figure is itself uncertain."""
        if self.seeds < 2 or not np.isfinite(self.seed_var):
            return {}
        q = 0.5 + confidence / 2.0
        low_var = self.seed_var * (self.seeds - 1) / chi2.ppf(q, self.seeds - 1)
        high_var = self.seed_var * (self.seeds - 1) / chi2.ppf(1 - q, self.seeds - 1)
        result = {}
        for goal, index in (("exclude_zero", 0), ("no_practical_difference", 1)):
            needed = [next((k for k in range(2, MAX_SEEDS + 1)
                            if replace(self, seed_var=var).power(k, delta, margin, confidence)[index] >= power), None)
                      for var in (self.seed_var, low_var, high_var)]
            result[goal] = {"seeds": needed[0], "range": [needed[1], needed[2]]}
        return result


def _half_width(seed_term: float, seed_df: int, image_term: float, image_df: int, confidence: float) -> float:
    """Banerjee's combination: each variance term times the squared t quantile of its own df."""
    if seed_df < 1 or not np.isfinite(seed_term):
        return float("nan")
    q = 0.5 + confidence / 2.0
    return float(np.sqrt(student_t.ppf(q, seed_df) ** 2 * seed_term + student_t.ppf(q, image_df) ** 2 * image_term))


def delta_interval(correct_a: np.ndarray, correct_b: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The interval of mean accuracy(a) - accuracy(b) described above; inputs are (seeds, images)
    booleans. ``(nan, nan)`` with one seed."""
    diff = _differences(correct_a, correct_b)
    half = Components.of(diff).half_width(confidence)
    delta = float(diff.mean())
    return delta - half, delta + half


def _differences(correct_a: np.ndarray, correct_b: np.ndarray) -> np.ndarray:
    diff = np.asarray(correct_a, np.int8) - np.asarray(correct_b, np.int8)
    return diff[None, :] if diff.ndim == 1 else diff


def verdict(low: float, high: float, margin: float = 0.0) -> int:
    """The verdict code of an interval (see the module's docstring); nan bounds are inconclusive."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if -margin <= low and high <= margin and margin > 0:
        return NO_PRACTICAL_DIFFERENCE
    if low > 0:
        return SUPPORTED
    if high < 0:
        return CONTRADICTED
    return INCONCLUSIVE


def _number(value: float) -> float | None:
    """JSON has no nan: a value that cannot be computed is null."""
    return float(value) if np.isfinite(value) else None


def robust_z(values: np.ndarray) -> np.ndarray:
    """Iglewicz and Hoaglin's modified z-score, 0.6745 (x - median) / MAD; where the MAD is 0 (half the
    runs tie), the mean absolute deviation times 1.2533 stands in for it, as they advise."""
    values = np.asarray(values, float)
    deviation = values - np.median(values)
    mad = np.median(np.abs(deviation))
    if mad > 0:
        return 0.6745 * deviation / mad
    mean_ad = np.mean(np.abs(deviation))
    return deviation / (1.253314 * mean_ad) if mean_ad > 0 else np.zeros_like(values)


@functools.cache
def outlier_threshold(runs: int, false_rate: float = OUTLIER_FALSE_RATE, draws: int = 100_000) -> float:
    """The robust z-score past which a run stands out of an arm of ``runs`` runs: the (1 - false_rate)
    quantile of the largest |z| among ``runs`` normal draws, by simulation. The fixed 3.5 of Iglewicz
    and Hoaglin flags some run in 21% of arms of five normal runs (a median of five and its MAD are
    themselves noisy); this threshold flags 5%: about 21 for 3 runs, 8 for 5, 4.6 for 10."""
    x = np.random.default_rng(0).normal(size=(draws, runs))
    deviation = x - np.median(x, axis=1, keepdims=True)
    z = 0.6745 * deviation / np.median(np.abs(deviation), axis=1, keepdims=True)
    return float(np.quantile(np.abs(z).max(axis=1), 1 - false_rate))


def standing_out(accuracy: np.ndarray, seeds: list[int]) -> dict[str, float]:
    """The runs of one arm that stand out (``outlier_threshold``): seed -> robust z (none under 3 runs)."""
    if len(seeds) < 3:
        return {}
    z, threshold = robust_z(accuracy), outlier_threshold(len(seeds))
    return {str(seed): round(float(score), 2) for seed, score in zip(seeds, z) if abs(score) > threshold}


def probability_of_improvement(acc_a: np.ndarray, acc_b: np.ndarray, confidence: float = 0.95,
                               resamples: int = 2000) -> dict:
    """P(a run of a scores above a run of b), over every pair of seeds, ties counting half (rliable's
    "probability of improvement", Agarwal et al. 2021), with a percentile bootstrap interval that
    resamples each arm's runs (rliable's stratified bootstrap; a fixed generator, so the same runs
    give the same interval)."""
    def p(a, b):
        return float(np.mean((a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :])))
    acc_a, acc_b = np.asarray(acc_a, float), np.asarray(acc_b, float)
    rng = np.random.default_rng(0)
    draws = [p(rng.choice(acc_a, len(acc_a)), rng.choice(acc_b, len(acc_b))) for _ in range(resamples)]
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return {"p": p(acc_a, acc_b), "ci_low": float(low), "ci_high": float(high)}


def leave_one_out(diff: np.ndarray, seeds: list[int], margin: float, confidence: float) -> dict[str, str]:
    """The verdict with each seed's runs left out (needs three seeds or more): seed -> verdict word."""
    if len(seeds) < 3:
        return {}
    result = {}
    for i, seed in enumerate(seeds):
        rest = np.delete(diff, i, axis=0)
        half = Components.of(rest).half_width(confidence)
        result[str(seed)] = VERDICT_WORDS[verdict(rest.mean() - half, rest.mean() + half, margin)]
    return result


def failure_rate_bound(runs: int, confidence: float = 0.95) -> float:
    """The largest per-run failure rate that ``runs`` runs without a failure leave plausible: with none
    seen, 1 - (1 - confidence) ** (1 / runs) (about 3 / runs, the rule of three)."""
    return float(1 - (1 - confidence) ** (1 / runs))


def compare(correct_a: np.ndarray, correct_b: np.ndarray, seeds: list[int], margin: float = 0.01,
            confidence: float = 0.95) -> dict:
    """Everything the hypothesis file says about ``a`` against ``b``: (seeds, images) correctness."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    diff = _differences(correct_a, correct_b)
    components = Components.of(diff)
    half = components.half_width(confidence)
    delta = float(diff.mean())
    low, high = delta - half, delta + half
    code = verdict(low, high, margin)
    needed = components.seeds_needed(margin, confidence)
    acc_a, acc_b = correct_a.mean(axis=1), correct_b.mean(axis=1)
    return {
        "verdict": code,
        "conclusion": VERDICT_WORDS[code],
        "delta": delta,
        "ci_low": _number(low),
        "ci_high": _number(high),
        "half_width": _number(half),
        "margin": float(margin),
        "seeds": len(seeds),
        # The fewest seeds expected to bring the half-width within the margin (null: none would).
        "seeds_needed": needed,
        "image_half_width": _number(components.image_half_width(confidence)),
        "accuracy_a": float(acc_a.mean()),
        "accuracy_b": float(acc_b.mean()),
        "delta_per_seed": {str(s): float(d) for s, d in zip(seeds, acc_a - acc_b)},
        "seed_sd": _number(np.sqrt(components.seed_var)),
        # Exact McNemar per seed: do these two trained networks differ on this test set? Not evidence
        # about the procedures; the verdict rests on the interval alone.
        "mcnemar_p_per_seed": {str(s): mcnemar_exact(a, b) for s, a, b in zip(seeds, correct_a, correct_b)},
        # Robust to one run: runs that stand out from their arm, the verdict without each seed, and the
        # chance that a run of a beats a run of b.
        "standing_out": {"a": standing_out(acc_a, seeds), "b": standing_out(acc_b, seeds)},
        "verdict_without_seed": (without := leave_one_out(diff, seeds, margin, confidence)),
        "flips_without_seed": sorted(s for s, word in without.items() if word != VERDICT_WORDS[code]),
        "probability_of_improvement": probability_of_improvement(acc_a, acc_b, confidence),
        # No failure seen in k runs still allows a per-run failure rate up to this (95%).
        "unseen_failure_rate": failure_rate_bound(len(seeds), confidence),
        # Seeds for 80% power (exclude zero at the observed delta; no practical difference if the
        # truth is zero), each with a range from the uncertainty of the seed spread.
        "seeds_for_power": components.seeds_for_power(delta, margin, confidence),
    }


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}"


def seeds_statement(result: dict) -> str:
    """Whether the seeds resolve the margin, and how many would."""
    margin, seeds, needed = 100 * result["margin"], result["seeds"], result["seeds_needed"]
    if result["half_width"] is None:
        return ("One seed cannot tell a procedure's effect from the luck of one run: run at least two "
                "(train.seeds) for an interval.")
    half = 100 * result["half_width"]
    if needed is None:
        floor = result.get("image_half_width")
        if floor is not None and 100 * floor > margin:
            return (f"The half-width is {half:.1f} points; the test images alone leave {100 * floor:.1f}, so no "
                    f"number of seeds brings it within the {margin:.1f}-point margin: the test set is too small.")
        return (f"The half-width is {half:.1f} points; the seeds vary so much that no practical number of them "
                f"brings it within the {margin:.1f}-point margin.")
    if half <= margin:
        return (f"The half-width is {half:.1f} points, within the {margin:.1f}-point margin: {seeds} seeds "
                f"are enough to resolve it.")
    text = f"The half-width is {half:.1f} points, wider than the {margin:.1f}-point margin."
    power = result.get("seeds_for_power") or {}
    if result["verdict"] == INCONCLUSIVE and power:  # advice only where the verdict is not yet decided
        plans = []
        for goal, words in (("exclude_zero", "to exclude zero if the truth is the delta seen"),
                            ("no_practical_difference", "to show no practical difference if the truth is zero")):
            plan = power.get(goal) or {}
            if plan.get("seeds") is not None:
                low, high = (str(k) if k is not None else f"over {MAX_SEEDS}" for k in plan["range"])
                plans.append(f"about {plan['seeds']} seeds {words} (from {low} to {high} over the seed spread's "
                             f"plausible range)")
        if plans:
            text += f" For {100 * POWER:.0f}% power it would take " + "; ".join(plans) + "."
    return text


def robustness_statement(result: dict) -> str:
    """Runs that stand out, verdicts that one seed decides, and what k seeds cannot see."""
    parts = []
    for side in ("a", "b"):
        for seed, z in (result.get("standing_out") or {}).get(side, {}).items():
            parts.append(f"{result[side]}'s seed {seed} stands out from its arm (robust z {z:+.1f})")
    flips = result.get("flips_without_seed") or []
    if flips:
        words = ", ".join(f"seed {s}: {result['verdict_without_seed'][s]}" for s in flips)
        parts.append(f"one seed decides the verdict: without it, it reads otherwise ({words})")
    pi = result.get("probability_of_improvement")
    text = "; ".join(parts) + ". " if parts else ""
    text = text[0].upper() + text[1:] if text else ""
    if pi:
        text += (f"A run of {result['a']} beats a run of {result['b']} with probability {pi['p']:.2f} "
                 f"[{pi['ci_low']:.2f}, {pi['ci_high']:.2f}]. ")
    if result.get("unseen_failure_rate") is not None:
        text += (f"{result['seeds']} seeds per arm cannot see a failure mode rarer than about 1 run in "
                 f"{result['seeds']}: one that never showed may still strike up to "
                 f"{100 * result['unseen_failure_rate']:.0f}% of runs.")
    return text.strip()


def sentence(name: str, result: dict) -> str:
    """The report's sentence: verdict, delta, interval, and whether the seeds suffice."""
    role = "the research question" if name == PRIMARY else "secondary"
    text = (f"{name}, {role} ({result['a']} minus {result['b']}): {VERDICT_WORDS[result['verdict']]}; "
            f"delta {_points(result['delta'])} points of test accuracy "
            f"({100 * result['accuracy_a']:.1f}% against {100 * result['accuracy_b']:.1f}%) over "
            f"{result['seeds']} seeds, 95% interval [{_points(result['ci_low'])}, {_points(result['ci_high'])}], "
            f"margin of practical equivalence {100 * result['margin']:.1f} points. ")
    low, high, margin = result["ci_low"], result["ci_high"], result["margin"]
    if result["verdict"] == SUPPORTED and low < margin:
        text += "It is better, but the size is unresolved: the interval reaches below the margin. "
    if result["verdict"] == CONTRADICTED and high > -margin:
        text += "It is worse, but the size is unresolved: the interval reaches above minus the margin. "
    text += seeds_statement(result)
    robust = robustness_statement(result)
    text += f" {robust}" if robust else ""
    if "raw" in result:
        raw = result["raw"]
        text += (f" Without BatchNorm recalibration it would read {VERDICT_WORDS[raw['verdict']]}, "
                 f"delta {_points(raw['delta'])} points [{_points(raw['ci_low'])}, {_points(raw['ci_high'])}].")
    return text



# The declared metric (metrics/hypothesis.json), as `dvc metrics show/diff` and `dvc exp show` print it:
# the research question (PRIMARY) as "1_transfer": its verdict in words, and "1_transfer_ci": "delta
# [low,high]" in points; each secondary comparison as "<name>": its verdict in words (its delta and interval
# are in comparisons.json and the report). DVC sorts keys: LEAD puts the question first. Measured with
# `dvc metrics show` on today's four comparisons: 96 columns; an interval for each would take 152. (Four
# "no practical difference" verdicts would take 141: a word that long does not fit four times.)
# Older commits hold {"<name>": {"verdict": code, "delta": ..., "ci_low": ..., "ci_high": ...}}.
LEAD = "1_"
CODES = {word: code for code, word in VERDICT_WORDS.items()}
_INTERVAL = re.compile(r"^([+-]?\d+\.\d) \[(?:n/a|([+-]?\d+\.\d),([+-]?\d+\.\d))\]$")


def short_verdicts(comparisons: dict[str, dict]) -> dict[str, str]:
    """``comparisons``: name -> compare's result."""
    out = {}
    for name, c in comparisons.items():
        if name != PRIMARY:
            out[name] = VERDICT_WORDS[c["verdict"]]
            continue
        bounds = "n/a" if c.get("ci_low") is None else f"{100 * c['ci_low']:+.1f},{100 * c['ci_high']:+.1f}"
        out[LEAD + name] = VERDICT_WORDS[c["verdict"]]
        out[f"{LEAD}{name}_ci"] = f"{100 * c['delta']:+.1f} [{bounds}]"
    return dict(sorted(out.items()))


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_verdicts(metrics: dict) -> dict[str, dict]:
    """Either form of metrics/hypothesis.json, nested as in the file or flattened as DVC's JSON output
    keys it ("transfer.verdict"), as name -> {verdict (the code), delta, ci_low, ci_high} (None where
    absent), the research question first where the file marks it, then by name."""
    flat = _flatten(metrics)
    found = []
    for key, value in flat.items():
        if key.endswith(".verdict") and key.count(".") == 1 and isinstance(value, (int, float)):
            name = key.removesuffix(".verdict")  # the numeric form
            found.append((False, name, int(value), *(flat.get(f"{name}.{f}") for f in ("delta", "ci_low", "ci_high"))))
        elif isinstance(value, str) and value in CODES and "." not in key:
            interval = _INTERVAL.match(flat.get(f"{key}_ci") or "")
            numbers = [None if x is None else float(x) / 100 for x in (interval.groups() if interval else [None] * 3)]
            found.append((not key.startswith(LEAD), key.removeprefix(LEAD), CODES[value], *numbers))
    return {name: {"verdict": code, "delta": delta, "ci_low": low, "ci_high": high}
            for _, name, code, delta, low, high in sorted(found, key=lambda f: f[:2])}
