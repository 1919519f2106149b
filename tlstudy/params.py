"""Checking ``params.yaml`` before anything runs.

Every stage but train and evaluate loads the params through ``load_params``, which checks them all
(not only the stage's own), so a mistake stops the first stage DVC runs, ``fetch`` (run on every
repro), before any training: one line per problem, naming the key and the fix. Train and evaluate
read them with ``tlstudy.config.read_params``, so that editing a check or its message here re-runs
none of them. This module imports no TensorFlow, so the check costs nothing on a ``dvc repro`` that
has nothing to do.
"""

from __future__ import annotations

import math
from pathlib import Path

from tlstudy.config import (  # noqa: F401  (setup_logging: for the stages)
    BACKBONES,
    DEFAULT_BACKBONE,
    FINE_TUNE,
    TRAIN_PRECISIONS,
    read_params,
    setup_logging,
)

TASKS = ("fashion_mnist", "face_age", "image_folder")
TRANSFER_SOURCES = ("mnist", "imagenet", "path")

# What each registry entry (tlstudy/models.py) accepts under models.<name>: its builder's keyword
# options, plus the transfer schedule for pretrained entries. tests/test_params.py holds these
# equal to the registry's builders and to training.TransferSchedule.
MODEL_OPTIONS = {
    "mlp": ("dropout", "units"),
    "cnn": ("dropout", "units"),
    "resnet50_scratch": ("image_size", "backbone"),
    "resnet50_tl": ("image_size", "backbone"),
    "resnet50_ft": ("image_size", "backbone"),
    "resnet50_lp": ("image_size", "backbone"),
}
PRETRAINED = ("resnet50_tl", "resnet50_ft", "resnet50_lp")
SCHEDULE_OPTIONS = ("frozen_epochs", "fine_tune", "finetune_lr_factor")


class ParamsError(SystemExit):
    """params.yaml asks for something the pipeline cannot do; the message names the key and the fix.
    A SystemExit: a stage that raises it prints the message alone, with no traceback, and exits 1."""


def load_params(path: str | Path = "params.yaml") -> dict:
    """The params, checked (``check_params``): a stage stops with one line per problem."""
    params = read_params(path)
    problems = check_params(params)
    if problems:
        raise ParamsError("\n".join(f"{path}: {problem}" for problem in problems))
    return params


def task_of(params: dict) -> str:
    """``data.task``, checked: which dataset the pipeline runs on."""
    task = (params.get("data") or {}).get("task", "fashion_mnist")
    if task not in TASKS:
        raise ParamsError(f"params.yaml: data.task is {task!r}; use one of {', '.join(TASKS)}")
    return task


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def check_params(params: dict) -> list[str]:
    """Every problem in ``params``, each one line naming the key and the fix; empty if none."""
    problems = []
    train = params.get("train") or {}
    models_section = params.get("models") or {}

    task = (params.get("data") or {}).get("task", "fashion_mnist")
    if task not in TASKS:
        problems.append(f"data.task is {task!r}; use one of {', '.join(TASKS)}")
    if task == "image_folder":
        problems += _check_image_folder(params)
    if not _positive_int(params.get("epochs")):
        problems.append(f"epochs is {params.get('epochs')!r}; use a positive integer, e.g. -S epochs=10")
    per_class = params.get("examples_per_class")
    if not (_positive_int(per_class) or (isinstance(per_class, str) and per_class.strip().lower() == "all")):
        problems.append(f"examples_per_class is {per_class!r}; use a positive integer or 'all'")
    for key in ("batch_size",):
        if not _positive_int(train.get(key)):
            problems.append(f"train.{key} is {train.get(key)!r}; use a positive integer, e.g. 128")
    if not _positive_number(train.get("learning_rate")):
        problems.append(f"train.learning_rate is {train.get('learning_rate')!r}; use a positive number, e.g. 0.001")

    problems += _check_recipe(train)
    validation = train.get("validation") or {}
    every, budget = validation.get("every", 1), validation.get("examples_per_class", "all")
    if not _positive_int(every):
        problems.append(f"train.validation.every is {every!r}; use a positive integer (1: every epoch)")
    if not (budget is None or _positive_int(budget) or (isinstance(budget, str) and budget.strip().lower() == "all")):
        problems.append(f"train.validation.examples_per_class is {budget!r}; use a positive integer or 'all'")

    if not isinstance(train.get("deterministic", True), bool):
        problems.append(f"train.deterministic is {train.get('deterministic')!r}; use true or false")
    if train.get("precision", "auto") not in TRAIN_PRECISIONS:
        problems.append(f"train.precision is {train.get('precision')!r}; use one of {', '.join(TRAIN_PRECISIONS)}")
    if train.get("jit_compile", "auto") not in ("auto", True, False):
        problems.append(f"train.jit_compile is {train.get('jit_compile')!r}; use auto, true or false")
    elif train.get("jit_compile") is True and train.get("deterministic", True) is True:
        problems.append("train.jit_compile is true but train.deterministic is true, under which Keras turns XLA "
                        "off; set train.deterministic: false for XLA, or train.jit_compile: auto")
    if train.get("distribute", "none") not in ("none", "mirrored"):
        problems.append(f"train.distribute is {train.get('distribute')!r}; use none or mirrored")

    seeds = train.get("seeds")
    if not isinstance(seeds, list) or not seeds:
        problems.append(f"train.seeds is {seeds!r}; list at least one seed, e.g. [0, 1, 2, 3, 4]")
    elif not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        problems.append(f"train.seeds is {seeds!r}; seeds are non-negative integers")
    elif len(set(seeds)) != len(seeds):
        problems.append(f"train.seeds {seeds} repeats a seed; list each once (a repeat is the same run)")

    models = train.get("models")
    if not isinstance(models, list) or not models:
        problems.append(f"train.models is {models!r}; list registry models, from {', '.join(MODEL_OPTIONS)}")
        models = []
    for name in models:
        if name not in MODEL_OPTIONS:
            problems.append(f"train.models names {name!r}, which is not in the registry; use one of "
                            f"{', '.join(MODEL_OPTIONS)} (or register it in tlstudy/models.py)")
    if len(set(map(str, models))) != len(models):
        problems.append(f"train.models {models} repeats a model; list each once")

    for name, options in models_section.items():
        if name not in MODEL_OPTIONS:
            problems.append(f"models.{name} is not a registry model; use one of {', '.join(MODEL_OPTIONS)}")
            continue
        allowed = MODEL_OPTIONS[name] + (SCHEDULE_OPTIONS if name in PRETRAINED else ())
        for key in options or {}:
            if key not in allowed:
                why = (f"{name} trains from random weights, so the transfer schedule does not apply"
                       if key in SCHEDULE_OPTIONS else f"it takes {', '.join(allowed)}")
                problems.append(f"models.{name}.{key} is not an option of {name}: {why}; remove it")
        options = options or {}
        backbone = options.get("backbone", DEFAULT_BACKBONE)
        if "backbone" in MODEL_OPTIONS[name] and backbone not in BACKBONES:
            problems.append(f"models.{name}.backbone is {backbone!r}; use one of {', '.join(BACKBONES)}")
        stages = (*FINE_TUNE, *BACKBONES.get(backbone, (0, ()))[1])
        if "fine_tune" in options and options["fine_tune"] not in stages:
            problems.append(f"models.{name}.fine_tune is {options['fine_tune']!r}; use one of {', '.join(stages)}"
                            + ("" if len(stages) > 2 else f" ({backbone} has no named stages to unfreeze from)"))
        frozen = options.get("frozen_epochs", 0)
        if not (isinstance(frozen, int) and not isinstance(frozen, bool) and frozen >= 0):
            problems.append(f"models.{name}.frozen_epochs is {frozen!r}; use an integer from 0 (none) up")
        if "finetune_lr_factor" in options and not _positive_number(options["finetune_lr_factor"]):
            problems.append(f"models.{name}.finetune_lr_factor is {options['finetune_lr_factor']!r}; "
                            "use a positive number (1.0: the scratch arm's rate)")
    for name in models:
        if name in MODEL_OPTIONS and name not in models_section and "image_size" in MODEL_OPTIONS[name]:
            problems.append(f"models.{name} is missing; give it an image_size (as the other ResNet50 arms)")
    sizes = {name: (options or {}).get("image_size") for name, options in models_section.items()
             if name in MODEL_OPTIONS and "image_size" in MODEL_OPTIONS[name]}
    backbones = {name: (models_section[name] or {}).get("backbone", DEFAULT_BACKBONE) for name in sizes}
    for name, size in sizes.items():
        backbone = backbones[name]
        minimum = BACKBONES.get(backbone, (32,))[0]
        if not (isinstance(size, int) and size >= minimum):
            problems.append(f"models.{name}.image_size is {size!r}; "
                            f"use an integer of at least {minimum} (Keras' {backbone} minimum)")
    if len(set(backbones.values())) > 1:
        listed = ", ".join(f"{name} {backbone}" for name, backbone in backbones.items())
        problems.append(f"models.<resnet>.backbone differs between the arms ({listed}); set one value for all, "
                        "or the comparison mixes the backbone into the effect of pretraining")
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} {size}" for name, size in sizes.items())
        problems.append(f"models.<resnet>.image_size differs between the arms ({listed}); set one value for all, "
                        "or the comparison mixes the image size into the effect of pretraining")

    source = (params.get("transfer") or {}).get("source")
    if source not in TRANSFER_SOURCES:
        problems.append(f"transfer.source is {source!r}; use one of {', '.join(TRANSFER_SOURCES)}")
    elif source == "path" and not (params.get("transfer") or {}).get("weights_file"):
        problems.append("transfer.source is 'path' but transfer.weights_file is empty; "
                        "give the weights file's path")
    return problems + _check_translate(params, task, models) + check_hypothesis(params.get("hypothesis"), models)


def _check_recipe(train: dict) -> list[str]:
    """train.augment, train.weight_decay and train.keep; absent, each is off (the original study's)."""
    problems = []
    augment = train.get("augment") or {}
    if not isinstance(augment, dict) or set(augment) - {"flip", "translate"}:
        problems.append(f"train.augment is {augment!r}; use a mapping of flip (true or false) and translate "
                        "(a fraction of the side, e.g. 0.1)")
        augment = {}
    if not isinstance(augment.get("flip", False), bool):
        problems.append(f"train.augment.flip is {augment['flip']!r}; use true or false")
    translate = augment.get("translate", 0)
    if not (_number_within(translate, 0, 0.5) or (translate == 0 and not isinstance(translate, bool))):
        problems.append(f"train.augment.translate is {translate!r}; use a fraction of the side in [0, 0.5), "
                        "e.g. 0.1, or 0 for none")
    decay = train.get("weight_decay", 0)
    if not (_positive_number(decay) or decay == 0) or isinstance(decay, bool):
        problems.append(f"train.weight_decay is {decay!r}; use 0 (Adam) or a positive number (AdamW), e.g. 0.05")
    if train.get("keep", "last") not in ("best", "last"):
        problems.append(f"train.keep is {train.get('keep')!r}; use best (the best validated epoch) or last")
    return problems


def _check_translate(params: dict, task: str, models: list) -> list[str]:
    """A shift that rounds to no pixel on the smallest images trained on: training.augmenter pads
    round(translate * side) pixels, so translate must exceed half a pixel there or it silently does nothing."""
    augment = (params.get("train") or {}).get("augment")
    translate = augment.get("translate", 0) if isinstance(augment, dict) else 0
    if not _number_within(translate, 0, 0.5):
        return []  # none, or reported by _check_recipe
    stored = 28 if task == "fashion_mnist" else (params.get(task) or {}).get("image_size")  # what the MLP, CNN see
    arms = params.get("models") or {}
    sides = [(arms.get(name) or {}).get("image_size") if "image_size" in MODEL_OPTIONS.get(name, ()) else stored
             for name in models]
    sides = [side for side in sides if isinstance(side, int) and side > 0]
    if not sides or round(translate * min(sides)) >= 1:
        return []
    least = math.ceil(100 * 0.5 / min(sides) + 1e-9) / 100
    return [f"train.augment.translate is {translate!r}, under one pixel of the smallest images trained on "
            f"({min(sides)} px), so no image would shift; use at least {least:g}, or 0 for none"]


def _number_within(value, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low < value < high


def check_hypothesis(hypothesis, models: list) -> list[str]:
    """The verdict's own params: a margin and a confidence on the scale stats.compare reads (fractions,
    not points or percent), and comparisons of two different models that this run trains. A comparison
    of a model not trained is an error, never a skip: a misspelt name would drop the research question."""
    if not isinstance(hypothesis, dict):
        return [f"hypothesis is {hypothesis!r}; give its comparisons, margin and confidence (see params.yaml)"]
    problems = []
    margin, confidence = hypothesis.get("margin"), hypothesis.get("confidence")
    if not _number_within(margin, 0, 0.5):
        problems.append(f"hypothesis.margin is {margin!r}; use a fraction of accuracy between 0 and 0.5, "
                        "e.g. 0.01 for 1 point")
    if not _number_within(confidence, 0.5, 1):
        problems.append(f"hypothesis.confidence is {confidence!r}; use a probability between 0.5 and 1, "
                        "e.g. 0.95")
    comparisons = hypothesis.get("comparisons")
    if comparisons is None:
        comparisons = {}
    if not isinstance(comparisons, dict):
        return problems + [f"hypothesis.comparisons is {comparisons!r}; map each name to two models, "
                           "e.g. transfer: [resnet50_tl, resnet50_scratch]"]
    for name, pair in comparisons.items():
        key = f"hypothesis.comparisons.{name}"
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(m, str) for m in pair)):
            problems.append(f"{key} is {pair!r}; name two models, [a, b], to compare a minus b")
        elif pair[0] == pair[1]:
            problems.append(f"{key} compares {pair[0]} with itself; name two different models")
        elif unknown := [m for m in pair if m not in MODEL_OPTIONS]:
            problems.append(f"{key} names {', '.join(map(repr, unknown))}, which is not in the registry; "
                            f"use one of {', '.join(MODEL_OPTIONS)}")
        elif untrained := [m for m in pair if m not in models]:
            problems.append(f"{key} compares {pair[0]} and {pair[1]}, but train.models lacks "
                            f"{' and '.join(untrained)}; add it to train.models, or drop the comparison "
                            f"(-S '~{key}')")
    return problems


def _check_image_folder(params: dict) -> list[str]:
    """The image-folder task's keys (data.task=image_folder)."""
    problems, folder = [], params.get("image_folder") or {}
    if not (isinstance(folder.get("root"), str) and folder["root"].strip()):
        problems.append(f"image_folder.root is {folder.get('root')!r}; give the folder of class folders, "
                        "e.g. -S image_folder.root=/path/to/images")
    if not (_positive_int(folder.get("image_size")) and folder["image_size"] >= 8):
        problems.append(f"image_folder.image_size is {folder.get('image_size')!r}; use an integer of at least 8, "
                        "e.g. 64 (the images' stored size; the ResNets resize to their own)")
    if not isinstance(folder.get("drop_duplicates"), bool):
        problems.append(f"image_folder.drop_duplicates is {folder.get('drop_duplicates')!r}; use true or false")
    sizes = ((params.get("split") or {}).get("image_folder") or {})
    val, test = sizes.get("val_size"), sizes.get("test_size")
    if not all(_positive_number(v) and v < 1 for v in (val, test)) or val + test >= 1:
        problems.append(f"split.image_folder.val_size and test_size are {val!r} and {test!r}; use fractions "
                        "above 0 whose sum is below 1, e.g. 0.15 and 0.15")
    return problems
