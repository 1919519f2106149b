"""Stage hypothesis: paired comparisons per regime into metrics/hypothesis.json (see tlstudy/stats.py)."""

import argparse
import logging
from pathlib import Path

import pandas as pd

from tlstudy import stats
from tlstudy.fsutil import write_json
from tlstudy.params import load_params, setup_logging

log = logging.getLogger("hypothesis")


def correctness(predictions_dir: Path, model: str, seeds: list[int], column: str) -> list:
    rows = []
    for seed in seeds:
        frame = pd.read_csv(predictions_dir / f"{model}_s{seed}.csv")
        rows.append((frame["actual_label"] == frame[column]).to_numpy())
    return rows


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

    result = {"regime": {"examples_per_class": params["data"]["examples_per_class"],
                         "epochs": params["train"]["epochs"], "source": params["transfer"]["source"],
                         "seeds": len(seeds)}}
    for name, (a, b) in params["hypothesis"]["comparisons"].items():
        if a not in models or b not in models:
            log.info("%s: skipped, %s and %s are not both in train.models", name, a, b)
            continue
        comparison = {"a": a, "b": b, **stats.compare(correctness(predictions, a, seeds, "predicted_label"),
                                                      correctness(predictions, b, seeds, "predicted_label"),
                                                      seeds, resamples)}
        raw_a, raw_b = (pd.read_csv(predictions / f"{m}_s{seeds[0]}.csv").columns for m in (a, b))
        if "predicted_label_raw" in raw_a or "predicted_label_raw" in raw_b:
            column = {m: "predicted_label_raw" if "predicted_label_raw" in cols else "predicted_label"
                      for m, cols in ((a, raw_a), (b, raw_b))}
            raw = stats.compare(correctness(predictions, a, seeds, column[a]),
                                correctness(predictions, b, seeds, column[b]), seeds, resamples)
            comparison["raw"] = {k: raw[k] for k in ("accuracy_a", "accuracy_b", "delta", "ci_low", "ci_high",
                                                     "verdict")}
        result[name] = comparison
        log.info("%s", stats.sentence(name, comparison))
    write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
