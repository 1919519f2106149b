"""Stage evaluate@<model>-<seed>: test metrics, and the test predictions for the confusion matrix
and for paired comparisons between models."""

import argparse
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from tlstudy.batchnorm import batchnorm_layers, recalibrate_batchnorm
from tlstudy.data import load_splits
from tlstudy.evaluation import classification_metrics
from tlstudy.fsutil import atomic_file, write_json
from tlstudy.models import RgbToBgr  # noqa: F401  (registered, for loading face-age ResNets)
from tlstudy.params import load_params, setup_logging
from tlstudy.training import predict, seed_everything

log = logging.getLogger("evaluate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-file", required=True)
    parser.add_argument("--seed", type=int, required=True, help="the run's seed: its training subset")
    parser.add_argument("--processed", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--metrics", required=True, help="JSON with the test metrics")
    parser.add_argument("--predictions", required=True, help="CSV of test labels and predictions")
    args = parser.parse_args()
    setup_logging()

    params = load_params()
    # Deterministic kernels (train.deterministic): the same scores from the same model, every time.
    seed_everything(args.seed, params["train"].get("deterministic", True))
    data = load_splits(Path(args.processed), Path(args.split), args.seed)
    model = keras.models.load_model(args.model_file, compile=False)
    probabilities = predict(model, data.test.x)
    metrics = classification_metrics(data.test.y, probabilities, data.class_names)
    names = np.array(data.class_names)
    columns = {"actual": names[data.test.y], "actual_label": data.test.y}
    if params["evaluate"]["recalibrate_bn"] and any(True for _ in batchnorm_layers(model)):
        # Headline numbers after BatchNorm recalibration on the run's own training images; the raw
        # ones (stale moving statistics) stay alongside, so a reader sees what recalibration changed.
        raw = metrics
        columns["predicted_label_raw"] = probabilities.argmax(axis=1)
        layers = recalibrate_batchnorm(model, data.train.x, params["train"]["batch_size"])
        log.info("recalibrated %d trained BatchNorm layers (frozen ones keep their statistics)", layers)
        probabilities = predict(model, data.test.x)
        metrics = classification_metrics(data.test.y, probabilities, data.class_names)
        metrics["raw"] = {k: raw[k] for k in ("loss", "accuracy", "errors")}
        log.info("before BatchNorm recalibration: test accuracy %.4f", raw["accuracy"])
    write_json(Path(args.metrics), metrics)

    predicted = probabilities.argmax(axis=1)
    frame = pd.DataFrame({**columns, "predicted": names[predicted], "predicted_label": predicted})
    with atomic_file(Path(args.predictions)) as f:
        frame.to_csv(f, index=False)
    log.info("%s: test accuracy %.4f, %d errors of %d", args.model_file, metrics["accuracy"],
             metrics["errors"], metrics["n"])


if __name__ == "__main__":
    main()
