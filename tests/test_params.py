"""Params checked first, in one place: every mistake is one line naming the key and the fix."""

import copy
import dataclasses
import hashlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT
from tlstudy.fsutil import save_npz
from tlstudy.params import MODEL_OPTIONS, PRETRAINED, SCHEDULE_OPTIONS, check_params, load_params

DEFAULT = load_params(ROOT / "params.yaml")


def changed(changes: dict) -> dict:
    params = copy.deepcopy(DEFAULT)
    for dotted, value in changes.items():
        *sections, key = dotted.split(".")
        node = params
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    return params


# (change, the words the one problem must contain: the key, and what to do)
CASES = [
    ({"train.seeds": []}, ["train.seeds", "at least one seed"]),
    ({"train.seeds": [0, 1, 1]}, ["train.seeds", "repeats a seed"]),
    ({"train.seeds": [0, -1]}, ["train.seeds", "non-negative integers"]),
    ({"train.models": ["mlp", "resnet50"], "hypothesis.comparisons": {}},
     ["'resnet50'", "not in the registry", "resnet50_scratch"]),
    ({"train.models": ["mlp", "mlp"], "hypothesis.comparisons": {}}, ["train.models", "repeats a model"]),
    ({"models.mlp.units": 512, "models.mlp.width": 3}, ["models.mlp.width", "dropout, units", "remove it"]),
    ({"models.resnet50_scratch.frozen_epochs": 3}, ["models.resnet50_scratch.frozen_epochs", "random weights"]),
    ({"models.resnet50_tl.fine_tune": "conv6"}, ["models.resnet50_tl.fine_tune", "conv2"]),
    ({"models.resnet50_tl.frozen_epochs": 10, "models.resnet50_tl.fine_tune": "al"},
     ["models.resnet50_tl.fine_tune", "'al'"]),  # even when the budget ends in the frozen phase
    ({"models.resnet50_tl.frozen_epochs": -1}, ["models.resnet50_tl.frozen_epochs", "from 0"]),
    ({"models.resnet50_tl.finetune_lr_factor": 0}, ["finetune_lr_factor", "positive"]),
    ({"models.resnet50_tl.image_size": 64}, ["image_size differs", "resnet50_tl 64", "resnet50_scratch 32"]),
    ({"models.resnet50_ft.image_size": 16, "models.resnet50_tl.image_size": 16, "models.resnet50_lp.image_size": 16,
      "models.resnet50_scratch.image_size": 16}, ["image_size is 16", "at least 32"]),  # one line per arm
    ({"models.vgg16": {"image_size": 32}}, ["models.vgg16", "not a registry model"]),
    ({"epochs": 0}, ["epochs", "positive integer"]),
    ({"epochs": "ten"}, ["epochs", "positive integer"]),
    ({"examples_per_class": -5}, ["examples_per_class", "'all'"]),
    ({"train.batch_size": 0}, ["train.batch_size", "positive integer"]),
    ({"train.learning_rate": -0.001}, ["train.learning_rate", "positive number"]),
    ({"train.validation.every": 0}, ["train.validation.every", "positive integer"]),
    ({"train.distribute": "multi"}, ["train.distribute", "none or mirrored"]),
    ({"train.deterministic": "yes"}, ["train.deterministic", "true or false"]),
    ({"train.augment.flip": "yes"}, ["train.augment.flip", "true or false"]),
    ({"train.augment.translate": 0.5}, ["train.augment.translate", "[0, 0.5)"]),
    ({"train.augment.translate": -0.1}, ["train.augment.translate", "0 for none"]),
    ({"train.augment.rotate": 10}, ["train.augment", "flip", "translate"]),
    ({"train.weight_decay": -0.01}, ["train.weight_decay", "0 (Adam)", "AdamW"]),
    ({"train.keep": "final"}, ["train.keep", "best", "last"]),
    ({"data.task": "imagenet"}, ["data.task", "fashion_mnist, face_age"]),
    ({"transfer.source": "cifar"}, ["transfer.source", "mnist, imagenet, path"]),
    ({"transfer.source": "path"}, ["transfer.weights_file", "path"]),
    # The verdict's own params: fractions, not points or percent (1 would make a 50-point gain "no
    # practical difference"; 95 an interval of nothing), and comparisons of two models this run trains.
    ({"hypothesis.margin": 1}, ["hypothesis.margin", "between 0 and 0.5", "0.01 for 1 point"]),
    ({"hypothesis.margin": 0}, ["hypothesis.margin", "between 0 and 0.5"]),
    ({"hypothesis.margin": 0.5}, ["hypothesis.margin", "between 0 and 0.5"]),
    ({"hypothesis.margin": "1%"}, ["hypothesis.margin", "between 0 and 0.5"]),
    ({"hypothesis.confidence": 95}, ["hypothesis.confidence", "between 0.5 and 1", "0.95"]),
    ({"hypothesis.confidence": 1}, ["hypothesis.confidence", "between 0.5 and 1"]),
    ({"hypothesis.confidence": 0.5}, ["hypothesis.confidence", "between 0.5 and 1"]),
    ({"hypothesis.confidence": True}, ["hypothesis.confidence", "between 0.5 and 1"]),
    ({"hypothesis.comparisons.transfer": ["resnet50_tll", "resnet50_scratch"]},
     ["hypothesis.comparisons.transfer", "'resnet50_tll'", "not in the registry", "resnet50_tl,"]),
    ({"train.models": ["mlp", "cnn", "resnet50_scratch", "resnet50_ft", "resnet50_lp"]},
     ["hypothesis.comparisons.transfer", "train.models lacks resnet50_tl;", "add it to train.models",
      "-S '~hypothesis.comparisons.transfer'"]),
    ({"hypothesis.comparisons.transfer": ["resnet50_tl", "resnet50_tl"]},
     ["hypothesis.comparisons.transfer", "resnet50_tl with itself", "two different models"]),
    ({"hypothesis.comparisons.transfer": ["resnet50_tl"]}, ["hypothesis.comparisons.transfer", "two models"]),
    ({"hypothesis.comparisons": [["resnet50_tl", "resnet50_scratch"]]}, ["hypothesis.comparisons", "map each name"]),
    ({"hypothesis": None}, ["hypothesis", "comparisons, margin and confidence"]),
]


def test_the_default_params_pass():
    assert check_params(DEFAULT) == []


@pytest.mark.parametrize("change", [
    {"hypothesis.margin": 0.001, "hypothesis.confidence": 0.99},
    {"hypothesis.margin": 0.49, "hypothesis.confidence": 0.51},
    # the original study's setting, its comparisons narrowed to what it trains (README, "Other regimes")
    {"train.models": ["mlp", "cnn"], "hypothesis.comparisons": {"cnn_vs_mlp": ["cnn", "mlp"]}},
    {"train.models": ["mlp"], "hypothesis.comparisons": {}},  # no comparison asked for: none made
], ids=["narrow", "wide", "mlp-cnn", "none"])
def test_what_the_verdict_can_read_passes(change):
    assert check_params(changed(change)) == []


def test_every_comparison_of_an_untrained_model_is_named():
    problems = check_params(changed({"train.models": ["mlp", "cnn"]}))
    assert [p.split(" ", 1)[0] for p in problems] == ["hypothesis.comparisons.transfer",
                                                      "hypothesis.comparisons.init_only",
                                                      "hypothesis.comparisons.linear_probe"]
    assert "train.models lacks resnet50_tl and resnet50_scratch;" in problems[0]


def test_a_shift_under_one_pixel_of_the_smallest_images_is_refused():
    """Fashion-MNIST's MLP trains on 28-pixel images: 0.01 of 28 is 0.28 px and pads none, 0.02 pads one
    (0.56 px rounds up); 0.5 / 28 = 0.018, so 0.02 is the least in hundredths. With only the ResNet arms
    at 96 px, 0.01 is 0.96 px and shifts."""
    problems = check_params(changed({"train.augment.translate": 0.01}))
    assert problems == ["train.augment.translate is 0.01, under one pixel of the smallest images trained on (28 px), "
                        "so no image would shift; use at least 0.02, or 0 for none"]
    assert check_params(changed({"train.augment.translate": 0.02})) == []
    assert check_params(changed({"train.augment.translate": 0.017})), "0.48 px on the MLP's, 0.54 on the ResNets'"
    resnets = [m for m in DEFAULT["train"]["models"] if m.startswith("resnet50")]
    big = {f"models.{m}.image_size": 96 for m in resnets}
    transfer = {"transfer": ["resnet50_tl", "resnet50_scratch"]}
    assert check_params(changed({"train.augment.translate": 0.01, "train.models": resnets,
                                 "hypothesis.comparisons": transfer, **big})) == []


@pytest.mark.parametrize("change, words", CASES, ids=[next(iter(c)) for c, _ in CASES])
def test_each_mistake_is_one_line_naming_key_and_fix(change, words):
    problems = check_params(changed(change))
    assert len(problems) == (4 if "image_size is 16" in words else 1), problems
    for problem in problems:
        assert "\n" not in problem and all(word in problem for word in words), problem


def test_the_hypothesis_stage_stops_instead_of_skipping_the_research_question(tmp_path):
    """A misspelt model in comparisons.transfer once skipped the question with an INFO line."""
    write_params(tmp_path, {"hypothesis.comparisons.transfer": ["resnet50_tll", "resnet50_scratch"]})
    result = stage(tmp_path, "stages.hypothesis", "--predictions", "p", "--split-summary", "s.json",
                   "--out", "h.json", "--details", "c.json")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "params.yaml: hypothesis.comparisons.transfer names 'resnet50_tll', which is not in the registry; use one "
        "of mlp, cnn, resnet50_scratch, resnet50_tl, resnet50_ft, resnet50_lp"]
    assert not (tmp_path / "h.json").exists() and not (tmp_path / "c.json").exists()


def test_the_table_matches_the_registry_and_the_schedule():
    """MODEL_OPTIONS is the TensorFlow-free copy of what the builders take: held equal here."""
    from tlstudy.models import REGISTRY
    from tlstudy.training import TransferSchedule

    assert set(MODEL_OPTIONS) == set(REGISTRY)
    for name, spec in REGISTRY.items():
        keywords = [p for p in inspect.signature(spec.builder).parameters
                    if p not in ("input_shape", "num_classes", "input_dtype")]
        assert tuple(keywords) == MODEL_OPTIONS[name], name
        assert spec.pretrained == (name in PRETRAINED), name
    assert SCHEDULE_OPTIONS == tuple(f.name for f in dataclasses.fields(TransferSchedule))


# A proxy that refuses: a stage that tried the network here would fail at once, never wait on a time-out.
NO_NETWORK = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}


def stage(tmp_path: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent), **NO_NETWORK})


def write_params(tmp_path: Path, changes: dict) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed(changes)))


def test_the_first_stage_stops_before_anything_runs(tmp_path):
    write_params(tmp_path, {"train.seeds": [], "train.models": ["mlp", "resnet"], "hypothesis.comparisons": {}})
    result = stage(tmp_path, "stages.fetch", "--out", "data/raw", "--weights", "data/weights.json")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "params.yaml: train.seeds is []; list at least one seed, e.g. [0, 1, 2, 3, 4]",
        "params.yaml: train.models names 'resnet', which is not in the registry; use one of mlp, cnn, "
        "resnet50_scratch, resnet50_tl, resnet50_ft, resnet50_lp (or register it in tlstudy/models.py)",
    ]
    assert not (tmp_path / "data").exists(), "nothing written"


def test_split_says_when_no_class_can_supply_the_examples_asked_for(tmp_path):
    y = np.array([0] * 30 + [1] * 8 + [0, 1] * 10, dtype=np.uint8)  # training: 30 and 8; test: 10 and 10
    preset = np.array([0] * 38 + [1] * 20, dtype=np.int8)
    save_npz(tmp_path / "processed.npz", x=np.zeros((len(y), 2, 2), np.float32), y=y, group=np.full(len(y), ""),
             preset=preset, class_names=np.array(["shirt", "sandal"]))
    write_params(tmp_path, {"examples_per_class": 10})
    result = stage(tmp_path, "stages.split", "--processed", "processed.npz", "--out", "split")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "params.yaml: examples_per_class is 10, but class 'sandal' has 8 training images "
        "(official train; official test halved); use at most 8, or 'all'")
    assert not (tmp_path / "split").exists()
    write_params(tmp_path, {"examples_per_class": 8})
    assert stage(tmp_path, "stages.split", "--processed", "processed.npz", "--out", "split").returncode == 0


def test_a_named_weights_file_is_listed_by_content(tmp_path):
    """pretrain depends on fetch's listing: new weights under the same name re-run pretraining.
    Fashion-MNIST's first file in data.source_dir is not the official one, so fetch stops there, after the
    listing, on any machine: it never reaches the system copy or the download."""
    weights = tmp_path / "backbone.h5"
    weights.write_bytes(b"first weights")
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx/train-images-idx3-ubyte").write_bytes(b"not Fashion-MNIST")
    write_params(tmp_path, {"transfer.source": "path", "transfer.weights_file": str(weights),
                            "data.source_dir": "idx"})
    args = ("--out", "raw", "--weights", "weights.json")
    result = stage(tmp_path, "stages.fetch", *args)
    assert result.returncode == 1 and "train-images-idx3-ubyte: checksum mismatch" in result.stderr
    assert "downloading" not in result.stderr
    listed = json.loads((tmp_path / "weights.json").read_text())
    assert listed["sha256"] == hashlib.sha256(b"first weights").hexdigest()
    weights.write_bytes(b"other weights")
    stage(tmp_path, "stages.fetch", *args)
    assert json.loads((tmp_path / "weights.json").read_text())["sha256"] == hashlib.sha256(b"other weights").hexdigest()
    weights.unlink()
    result = stage(tmp_path, "stages.fetch", *args)
    assert result.returncode != 0 and "transfer.weights_file" in result.stderr


@pytest.mark.parametrize("stage_module", ["stages.train", "stages.evaluate"])
def test_editing_a_check_or_a_split_reruns_no_training(stage_module):
    """The checks and their messages (params.py), and the split stage's rules (splits.py), are no code
    dependency of train or evaluate: editing one re-runs no ResNet50. Fetch, which DVC runs on every
    repro, still checks every param first."""
    from tests.test_dvc_deps import import_closure, stages

    closure = import_closure(stage_module)
    assert "tlstudy/config.py" in closure
    assert not {"tlstudy/params.py", "tlstudy/splits.py"} & closure
    assert stages()["fetch"].get("always_changed") and "tlstudy/params.py" in import_closure("stages.fetch")
