"""python -m tlstudy.rerun: this machine's runs beside the committed ones."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import copy_repo
from tests.test_pipeline import run
from tlstudy.rerun import PATHS, Comparison, compare, summary


def write_run(root, model, seed, predicted, accuracy):
    name = f"{model}_s{seed}"
    for folder in (PATHS["eval"], PATHS["predictions"]):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / PATHS["eval"] / f"{name}.json").write_text(json.dumps({"accuracy": accuracy}))
    pd.DataFrame({"actual_label": np.arange(10) % 2, "predicted_label": predicted}).to_csv(
        root / PATHS["predictions"] / f"{name}.csv", index=False)


def test_a_run_is_set_beside_its_twin_and_the_spread_of_its_model(tmp_path):
    committed, here = tmp_path / "committed", tmp_path / "here"
    write_run(committed, "cnn", 1, np.zeros(10, int), 0.80)
    write_run(here, "cnn", 1, np.r_[np.ones(3, int), np.zeros(7, int)], 0.83)
    accuracies = {0: 0.78, 1: 0.80, 2: 0.82}  # sample standard deviation 0.02
    result = compare("cnn", 1, committed, here, accuracies)
    assert result.changed == 3 and result.images == 10
    assert result.difference == pytest.approx(0.03) and result.in_spreads == pytest.approx(1.5)
    assert summary([result]) == ("0 of 1 runs gave the committed predictions image for image. The largest "
                                 "move was cnn seed 1's, +3.00 points, 1.50 times its model's seed-to-seed spread.")
    # Two runs: the one that moved most against its own model's spread is named, with both of its figures.
    calm = Comparison("mlp", 0, 0.50, 0.60, 100, 1000, spread=0.20)  # 10 points, half a spread
    assert summary([calm, result]).endswith("cnn seed 1's, +3.00 points, 1.50 times its model's seed-to-seed "
                                            "spread.")


def test_other_test_images_are_an_error_naming_the_cause(tmp_path):
    write_run(tmp_path / "a", "mlp", 0, np.zeros(10, int), 0.5)
    write_run(tmp_path / "b", "mlp", 0, np.zeros(10, int), 0.5)
    frame = pd.read_csv(tmp_path / "b" / PATHS["predictions"] / "mlp_s0.csv")
    frame.iloc[:9].to_csv(tmp_path / "b" / PATHS["predictions"] / "mlp_s0.csv", index=False)
    with pytest.raises(SystemExit, match="the test images differ.*dvc status"):
        compare("mlp", 0, tmp_path / "a", tmp_path / "b", {0: 0.5})


def test_the_same_machine_gives_the_committed_predictions_and_leaves_the_workspace_alone(plumbing_base, tmp_path):
    repo = copy_repo(plumbing_base, tmp_path / "repo")
    output = run(repo, sys.executable, "-m", "tlstudy.rerun", "--models", "mlp", "--seeds", "0", "1")
    assert "| mlp seed 0 |" in output and "| mlp seed 1 |" in output
    assert "2 of 2 runs gave the committed predictions image for image." in output
    assert run(repo, "git", "status", "--porcelain").strip() == ""


def test_a_run_that_was_never_committed_is_refused_before_anything_trains(plumbing_base, tmp_path):
    repo = copy_repo(plumbing_base, tmp_path / "repo")
    result = subprocess.run([sys.executable, "-m", "tlstudy.rerun", "--models", "mlp", "--seeds", "7"],
                            cwd=repo, capture_output=True, text=True)
    assert result.returncode != 0 and "no committed run of seed(s) [7]" in result.stderr


def test_edited_params_are_refused_before_anything_trains(plumbing_base, tmp_path):
    repo = copy_repo(plumbing_base, tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump({**params, "epochs": params["epochs"] + 1}))
    result = subprocess.run([sys.executable, "-m", "tlstudy.rerun", "--models", "mlp"], cwd=repo,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "params.yaml" in result.stderr and "git stash" in result.stderr
