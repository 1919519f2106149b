"""End to end on face-age data: the real ``dvc exp run`` on a generated AI-Hub layout, the tiny profile."""

import json
import sys

import pytest

from tests.conftest import scratch_dir
from tests.face_layouts import write_aihub
from tests.test_pipeline import FETCH, make_repo, run, runs, stages_run
from tlstudy.stats import INCONCLUSIVE

pytestmark = pytest.mark.slow
# The study's four models; resnet50_ft loads the backbone as resnet50_tl does, and the tiny profile of
# tests/test_pipeline.py runs it.
MODELS = ["mlp", "cnn", "resnet50_scratch", "resnet50_tl"]


@pytest.fixture(scope="module")
def face_repo(request, tmp_path_factory):
    """The whole pipeline on a generated AI-Hub layout, through `dvc exp run -S ...` as a user would."""
    with scratch_dir(request, tmp_path_factory, "face_project") as root:
        layout = write_aihub(root / "aihub")
        repo = make_repo(root / "repo", {"face_age.image_size": 32, "train.models": MODELS,
                                         "hypothesis.comparisons": {"transfer": ["resnet50_tl", "resnet50_scratch"],
                                                                    "cnn_vs_mlp": ["cnn", "mlp"]}})
        output = run(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", "data.task=face_age",
                     "-S", f"face_age.root={layout.root}", "-S", "face_age.format=aihub")
        repo.joinpath("first_run.log").write_text(output)
        yield repo, layout


def test_face_age_runs_the_four_models_and_the_verdict(face_repo):
    repo, layout = face_repo
    ran = stages_run((repo / "first_run.log").read_text())
    upstream = {FETCH, "preprocess", "split", "hypothesis", "report"}
    assert upstream | runs("train", models=MODELS) | runs("evaluate", models=MODELS) <= ran
    data = json.loads((repo / "metrics/data.json").read_text())
    assert data["images"] == len(layout.usable) and data["image_shape"] == [32, 32, 3]
    assert data["skipped"] == {"unparsed_name": 1, "no_age_group": 1, "unreadable": 2, "missing": 0,
                               "conflicting_rows": 0, "not_in_metadata": 0}
    skipped = (repo / "plots/eda/skipped.csv").read_text().splitlines()
    assert len(skipped) == 1 + 4 and any("F0003/IMG_0042.jpg,unparsed_name" in line for line in skipped)
    for model in MODELS:  # test: families F0851 and F0852, one image per age group each
        metrics = json.loads((repo / f"metrics/eval/{model}_s0.json").read_text())
        assert metrics["n"] == 16 and len(metrics["per_class_accuracy"]) == 8
    assert (repo / "plots/predictions/cnn_s0.csv").read_text().splitlines()[0].startswith("actual,")
    assert "67-80" in (repo / "plots/predictions/cnn_s0.csv").read_text()
    comparisons = json.loads((repo / "metrics/comparisons.json").read_text())
    assert comparisons["regime"]["task"] == "face_age" and comparisons["transfer"]["verdict"] == INCONCLUSIVE
    html = (repo / "report/report.html").read_text()
    assert html.count("data:image/png;base64,") == 7 and "Ages, with the age groups" in html
    assert "split = by family number" in html
