"""Reading ``params.yaml`` at a stage's entry point: the few lines the train and evaluate stages need.

The checks and their messages live in ``tlstudy/params.py``, which these two stages do not import:
editing a check re-runs no training. They still run first on every ``dvc repro`` and ``dvc exp run``,
since the fetch stage, which DVC always runs (``always_changed``), checks every param before any
training starts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

# How far up a pretrained backbone is fine-tuned: none (frozen for the whole budget: a linear probe), all
# of it, or from one of its stages up. tlstudy/training.py applies it; tlstudy/params.py checks it.
FINE_TUNE = ("none", "all")  # for every backbone; each backbone's stages below
# The Keras applications on offer as models.<arm>.backbone (tlstudy/models.py builds them): Keras'
# minimum image size for each, and the stages fine_tune may unfreeze from, bottom up (none for
# MobileNetV3Small, whose layer names carry no stage).
BACKBONES = {
    "ResNet50": (32, ("conv2", "conv3", "conv4", "conv5")),
    "MobileNetV3Small": (32, ()),
    "EfficientNetB0": (32, tuple(f"block{i}" for i in range(2, 8))),
}
DEFAULT_BACKBONE = "ResNet50"
TRAIN_PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def read_params(path: str | Path = "params.yaml") -> dict:
    """The params as written, unchecked (``tlstudy.params.load_params`` checks them)."""
    with open(path) as f:
        return yaml.safe_load(f)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
