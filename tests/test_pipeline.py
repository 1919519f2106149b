"""End to end: the real ``dvc repro`` on a tiny profile in a temporary git repository."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, scratch_dir
from tlstudy.stats import INCONCLUSIVE

pytestmark = pytest.mark.slow

MODELS = ["mlp", "cnn", "resnet50_scratch", "resnet50_tl", "resnet50_ft", "resnet50_lp"]
FETCH = "data/dvc.yaml:fetch"  # DVC's name for the stage in its own file
TINY = {"examples_per_class": 5, "epochs": 2, "train.seeds": [0], "train.models": MODELS,
        "pretrain.examples_per_class": 5, "pretrain.epochs": 1, "pretrain.val_size": 100}
TINY_TL = {"models.resnet50_tl.frozen_epochs": 1}


def runs(stage: str, seed: int = 0, models: list[str] = MODELS) -> set[str]:
    return {f"{stage}@{model}-{seed}" for model in models}


def set_params(repo: Path, changes: dict) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in changes.items():
        *sections, key = dotted.split(".")
        node = params
        for section in sections:
            node = node[section]
        node[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def project_env() -> dict:
    """The test's Python first on PATH (stages run `python -m ...`), and a git identity for commits."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def run(repo: Path, *args: str) -> str:
    result = subprocess.run(args, cwd=repo, env=project_env(), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def make_repo(repo: Path, changes: dict | None = None) -> Path:
    """The project's pipeline and code, on the tiny profile, as a fresh git and DVC repository."""
    (repo / "data").mkdir(parents=True)
    (repo / "sweep").mkdir()
    # the collected sweep's crossover: committed beside the pipeline, which quotes it in the report
    for name in ("dvc.yaml", "data/dvc.yaml", "params.yaml", ".gitignore",
                 "sweep/comparisons.csv", "sweep/crossover.md", "sweep/crossover.png"):
        shutil.copy(ROOT / name, repo / name)
    for package in ("stages", "tlstudy"):
        shutil.copytree(ROOT / package, repo / package, ignore=shutil.ignore_patterns("__pycache__"))
    set_params(repo, {**TINY, **TINY_TL, **(changes or {})})
    run(repo, "git", "init", "-q")
    run(repo, sys.executable, "-m", "dvc", "init", "-q")
    shutil.copy(ROOT / ".dvc/config", repo / ".dvc/config")  # the offline plots template, as `make setup` writes
    shutil.copytree(ROOT / ".dvc/plots", repo / ".dvc/plots", ignore=shutil.ignore_patterns("offline.html"))
    run(repo, sys.executable, "-m", "tlstudy.vega", "template", ".dvc/plots/offline.html")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "tiny profile")
    return repo


@pytest.fixture(scope="module")
def repo(request, tmp_path_factory):
    with scratch_dir(request, tmp_path_factory, "project") as root:
        repo = make_repo(root)
        repo.joinpath("first_run.log").write_text(run(repo, sys.executable, "-m", "dvc", "repro"))
        yield repo


def test_first_repro_runs_every_stage_and_writes_sane_results(repo):
    ran = stages_run((repo / "first_run.log").read_text())
    upstream = {FETCH, "preprocess", "split", "pretrain", "hypothesis", "report"}
    assert ran == upstream | runs("train") | runs("evaluate")
    for model in MODELS:
        metrics = json.loads((repo / f"metrics/eval/{model}_s0.json").read_text())
        predictions = (repo / f"plots/predictions/{model}_s0.csv").read_text().splitlines()[1:]
        wrong = sum(row.split(",")[1] != row.split(",")[-1] for row in predictions)  # actual_label, predicted_label
        assert metrics["n"] == len(predictions) == 5000 and metrics["errors"] == wrong
        assert len(metrics["per_class_accuracy"]) == 10
        curve = (repo / f"dvclive/{model}_s0/plots/metrics/train/loss.tsv").read_text().splitlines()
        assert len(curve) == 1 + 2, "every arm spends the same two-epoch budget"
        validation = (repo / f"dvclive/{model}_s0/plots/metrics/eval/accuracy.tsv").read_text().splitlines()
        assert validation[-1].startswith("1\t"), "validated after the last epoch (train.validation.every: 2)"
        assert ("raw" in metrics) == model.startswith("resnet50"), "ResNet arms report raw and recalibrated"
    # 50 training images, 2 epochs: the MLP scored 30.3% here (measured; chance is 10%).
    assert json.loads((repo / "metrics/eval/mlp_s0.json").read_text())["accuracy"] > 0.2
    pretrain = json.loads((repo / "metrics/pretrain.json").read_text())
    assert pretrain["source"] == "mnist" and pretrain["train_images"] == 50
    assert (repo / "models/init/resnet50_tl/backbone.weights.h5").stat().st_size > 1_000_000
    assert json.loads((repo / "models/init/resnet50_scratch/init.json").read_text())["init"] == "random"
    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert list(summary) == MODELS, "the declared summary: mean test accuracy per model"
    comparisons = json.loads((repo / "metrics/comparisons.json").read_text())
    assert comparisons["regime"] == {"task": "fashion_mnist", "examples_per_class": 5, "epochs": 2,
                                     "source": "mnist", "seeds": 1, "trained_per_class": 5.0}
    transfer = comparisons["transfer"]
    # One seed cannot separate a procedure from the luck of one run: no interval, no verdict.
    assert transfer["verdict"] == INCONCLUSIVE and transfer["ci_low"] is None and transfer["seeds_needed"] is None
    assert transfer["accuracy_a"] == pytest.approx(summary["resnet50_tl"])
    assert comparisons["init_only"]["a"] == "resnet50_ft" and "raw" in comparisons["init_only"]
    assert "raw" in transfer and "raw" not in comparisons["cnn_vs_mlp"]
    # The declared verdicts: in words (one seed: inconclusive), the research question first, with its delta
    # in points and no interval.
    hypothesis = json.loads((repo / "metrics/hypothesis.json").read_text())
    assert hypothesis == {"1_transfer": "inconclusive", "1_transfer_ci": f"{100 * transfer['delta']:+.1f} [n/a]",
                          **{name: "inconclusive" for name in comparisons if name not in ("transfer", "regime")}}
    assert json.loads((repo / "metrics/data.json").read_text())["train_images"] == 60000
    html = (repo / "report/report.html").read_text()
    assert html.count("data:image/png;base64,") == 7 and "<td>cnn</td>" in html  # six of its own, the crossover
    assert "Where each advantage ends, from the sweep collected in sweep/ (" in html
    assert "One seed cannot tell a procedure" in html and "Trained on: " in html
    assert html.index("transfer, the research question (resnet50_tl minus resnet50_scratch)") < html.index(
        "Test accuracy over seeds")
    assert "Report: report/report.html" in (repo / "first_run.log").read_text()
    assert len((repo / "data/split/subset_seed0.npy").read_bytes()) > 0


def test_second_repro_runs_only_the_fetch_check(repo):
    """fetch always runs (a face folder outside the repository can change unseen); its output is
    unchanged, so nothing after it runs."""
    output = run(repo, sys.executable, "-m", "dvc", "repro")
    assert stages_run(output) == {FETCH}
    assert "Stage 'preprocess' didn't change, skipping" in output


def test_changing_the_pretraining_reruns_only_the_pretrained_arms(repo):
    set_params(repo, {"pretrain.epochs": 2})
    output = run(repo, sys.executable, "-m", "dvc", "repro")
    assert stages_run(output) == {FETCH, "pretrain", "hypothesis", "report"} | {
        f"{stage}@{model}-0" for stage in ("train", "evaluate")
        for model in ("resnet50_tl", "resnet50_ft", "resnet50_lp")}


def test_adding_a_seed_trains_only_the_new_runs(repo):
    set_params(repo, {"train.seeds": [0, 1], "train.models": ["mlp", "cnn"],
                      "hypothesis.comparisons": {"cnn_vs_mlp": ["cnn", "mlp"]}})
    output = run(repo, sys.executable, "-m", "dvc", "repro")
    assert stages_run(output) == {FETCH, "split", "train@mlp-1", "train@cnn-1", "evaluate@mlp-1", "evaluate@cnn-1",
                                  "hypothesis", "report"}
    comparisons = json.loads((repo / "metrics/comparisons.json").read_text())
    assert "transfer" not in comparisons and set(comparisons["cnn_vs_mlp"]["mcnemar_p_per_seed"]) == {"0", "1"}
    assert comparisons["cnn_vs_mlp"]["ci_low"] is not None, "two seeds: an interval"
    assert json.loads((repo / "metrics/models.json").read_text())["mlp"]["seeds"] == 2
