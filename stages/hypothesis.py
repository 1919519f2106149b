"""Stage hypothesis: paired comparisons of the models, by seed and test image (tlstudy/stats.py).

Writes the verdicts in words, the research question's with its delta and interval, into ``metrics/hypothesis.json``
(what `dvc metrics show/diff` and `dvc exp show` lead with; ``tlstudy.stats.read_verdicts`` reads it and
older commits' numeric form) and everything else about each comparison into
``metrics/comparisons.json`` (per-seed deltas, McNemar per seed, raw verdicts, the regime).
"""

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from tlstudy import stats
from tlstudy.fsutil import write_json
from tlstudy.params import load_params, setup_logging, task_of

log = logging.getLogger("hypothesis")


def correctness(predictions_dir: Path, model: str, seeds: list[int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-seed, per-test-image correctness of ``model``, after and (if evaluate kept it) before
    BatchNorm recalibration; each predictions file is read once."""
    frames = [pd.read_csv(predictions_dir / f"{model}_s{seed}.csv") for seed in seeds]
    correct = np.array([f["actual_label"] == f["predicted_label"] for f in frames])
    if "predicted_label_raw" not in frames[0]:
        return correct, None
    return correct, np.array([f["actual_label"] == f["predicted_label_raw"] for f in frames])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", required=True, help="evaluate's <model>_s<seed>.csv directory")
    parser.add_argument("--split-summary", required=True, help="the split stage's summary.json")
    parser.add_argument("--out", required=True, help="the verdicts: metrics/hypothesis.json")
    parser.add_argument("--details", required=True, help="everything about each comparison")
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    seeds = params["train"]["seeds"]
    hypothesis = params["hypothesis"]
    margin, confidence = float(hypothesis["margin"]), float(hypothesis["confidence"])
    predictions = Path(args.predictions)

    result = {}
    # load_params checked that each comparison's two models are trained: none is skipped.
    for name, (a, b) in (hypothesis["comparisons"] or {}).items():
        (correct_a, raw_a), (correct_b, raw_b) = (correctness(predictions, m, seeds) for m in (a, b))
        comparison = {**stats.compare(correct_a, correct_b, seeds, margin, confidence), "a": a, "b": b,
                      # the research question decides; the others are secondary, at 95% each, unadjusted
                      "role": "primary" if name == stats.PRIMARY else "secondary"}
        if raw_a is not None or raw_b is not None:  # a model without BatchNorm has no raw predictions
            raw = stats.compare(correct_a if raw_a is None else raw_a, correct_b if raw_b is None else raw_b,
                                seeds, margin, confidence)
            comparison["raw"] = {k: raw[k] for k in ("verdict", "conclusion", "delta", "ci_low", "ci_high",
                                                     "accuracy_a", "accuracy_b")}
        result[name] = comparison
        log.info("%s", stats.sentence(name, comparison))
    trained = json.loads(Path(args.split_summary).read_text())["train_per_class_by_seed"]
    result["regime"] = {"task": task_of(params), "examples_per_class": params["examples_per_class"],
                        "epochs": params["epochs"], "source": params["transfer"]["source"], "seeds": len(seeds),
                        # what 'all' means in numbers: the mean training images per class of the subsets
                        "trained_per_class": float(np.mean([np.mean(c) for c in trained.values()]))}
    write_json(Path(args.details), result)
    write_json(Path(args.out), verdicts(result))


def verdicts(details: dict) -> dict[str, str]:
    """What a reader needs first: each comparison's verdict in words, the research question's first
    and with its delta and interval in points (tlstudy.stats.short_verdicts), so that `dvc metrics show`
    fits 120 columns and `dvc metrics diff` leads with the question. Everything else stays in
    comparisons.json. The only declared metrics file: DVC orders several files at random in
    `dvc metrics show/diff`."""
    return stats.short_verdicts({name: c for name, c in details.items() if name != "regime"})


if __name__ == "__main__":
    main()
