"""Stage hypothesis: paired comparisons per regime into metrics/hypothesis.json (see tlstudy/stats.py)."""

import argparse
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
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    models, seeds = params["train"]["models"], params["train"]["seeds"]
    resamples = int(params["hypothesis"]["bootstrap_resamples"])
    predictions = Path(args.predictions)

    result = {"regime": {"task": task_of(params),
                         "examples_per_class": params["data"]["examples_per_class"],
                         "epochs": params["train"]["epochs"], "source": params["transfer"]["source"],
                         "seeds": len(seeds)}}
    for name, (a, b) in params["hypothesis"]["comparisons"].items():
        if a not in models or b not in models:
            log.info("%s: skipped, %s and %s are not both in train.models", name, a, b)
            continue
        (correct_a, raw_a), (correct_b, raw_b) = (correctness(predictions, m, seeds) for m in (a, b))
        comparison = {"a": a, "b": b, **stats.compare(correct_a, correct_b, seeds, resamples)}
        if raw_a is not None or raw_b is not None:  # a model without BatchNorm has no raw predictions
            raw = stats.compare(correct_a if raw_a is None else raw_a, correct_b if raw_b is None else raw_b,
                                seeds, resamples)
            comparison["raw"] = {k: raw[k] for k in ("accuracy_a", "accuracy_b", "delta", "ci_low", "ci_high",
                                                     "verdict")}
        result[name] = comparison
        log.info("%s", stats.sentence(name, comparison))
    write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
