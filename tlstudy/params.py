"""Reading ``params.yaml`` once, at a stage's entry point."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml


def load_params(path: str | Path = "params.yaml") -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


TASKS = ("fashion_mnist", "face_age")


def task_of(params: dict) -> str:
    """``data.task``, checked: which dataset the pipeline runs on."""
    task = (params.get("data") or {}).get("task", "fashion_mnist")
    if task not in TASKS:
        raise ValueError(f"data.task must be one of {', '.join(TASKS)}, got {task!r}")
    return task
