"""The README's generated blocks: the answer it shows is the committed metrics' (tlstudy/readme.py)."""

import json
import re
import subprocess
from datetime import date

import pytest

from tests.conftest import ROOT
from tlstudy.readme import exp_show_columns, update

README = """# Title

<!-- begin answer (generated) -->
stale
<!-- end answer -->

<!-- begin crossover (generated) -->
<!-- end crossover -->

Costs:

<!-- begin costs (generated) -->
<!-- end costs -->
"""


def test_the_committed_readme_agrees_with_the_committed_metrics():
    assert update(ROOT, check=True) == [], "run `python -m tlstudy.readme` and commit README.md"


@pytest.fixture
def project(tmp_path):
    """A constructed project (no git: the results date is today's)."""
    (tmp_path / "README.md").write_text(README)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/performance.md").write_text("# P\n\n<!-- begin costs (edit here) -->\n| a | b |\n|---|---|\n"
                                                  "| make repro | 9 min |\n<!-- end costs -->\nmore\n")
    (tmp_path / "metrics").mkdir()
    comparisons = {"transfer": {"verdict": 1, "delta": 0.031, "ci_low": 0.012, "ci_high": 0.05, "seeds": 5,
                                "seeds_needed": 12, "a": "tl", "b": "scratch"},
                   "cnn_vs_mlp": {"verdict": 0, "delta": -0.004, "ci_low": None, "ci_high": None, "seeds": 1,
                                  "seeds_needed": None, "a": "cnn", "b": "mlp"},
                   "regime": {"task": "image_folder", "examples_per_class": 10, "epochs": 3, "source": "imagenet",
                              "seeds": 5}}
    (tmp_path / "metrics/comparisons.json").write_text(json.dumps(comparisons))
    (tmp_path / "metrics/hypothesis.json").write_text(json.dumps(
        {"1_transfer": "supported", "1_transfer_ci": "+3.1 [+1.2,+5.0]",
         "cnn_vs_mlp": "inconclusive", "cnn_vs_mlp_ci": "-0.4 [n/a]"}))
    (tmp_path / "docs/recipe.md").write_text("# R\n\n<!-- begin recipe (generated) -->\n<!-- end recipe -->\n")
    (tmp_path / "params.yaml").write_text("train:\n  seeds: [0]\n")
    (tmp_path / "docs/sweeps.md").write_text("".join(
        f"<!-- begin sweep-{name} (generated) -->\n<!-- end sweep-{name} -->\n" for name in ("accuracy", "verdicts",
                                                                                              "crossover")))
    # A collected sweep, sizes listed by images per class (as text, 1000 would come before 20).
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep/comparisons.csv").write_text(
        "epochs,examples_per_class,x,comparison,seeds\n10,10,10.0,transfer,5\n3,all,6000.0,transfer,3\n"
        "3,1000,1000.0,transfer,5\n3,20,20.0,transfer,5\n3,20,20.0,init_only,5\n")
    (tmp_path / "sweep/accuracy.md").write_text(
        "| epochs | examples per class | tl |\n|---|---|---|\n| 3 | 10 | 50.0 |\n")
    (tmp_path / "sweep/table.md").write_text("## transfer\n\n| a |\n|---|\n\n## init_only\n\n| b |\n|---|\n")
    (tmp_path / "sweep/crossover.md").write_text("**transfer**\n\n- At 3 epochs, the advantage is shown.\n\n")
    (tmp_path / "dvclive/tl_s9/plots/metrics/eval").mkdir(parents=True)  # a seed since dropped: not averaged
    (tmp_path / "dvclive/tl_s9/params.yaml").write_text("seed: 9\nkept_epoch: 2\n")
    (tmp_path / "dvclive/tl_s9/plots/metrics/eval/accuracy.tsv").write_text("step\taccuracy\n1\t0.0\n")
    (tmp_path / "sweep/recipe_on").mkdir(parents=True)
    on = {**comparisons, "transfer": {**comparisons["transfer"], "verdict": 0, "delta": -0.021, "ci_low": -0.05,
                                      "ci_high": 0.0071}}
    (tmp_path / "sweep/recipe_on/comparisons.json").write_text(json.dumps(on))
    models = {"tl": {"accuracy_mean": 0.8, "accuracy_min": 0.75, "accuracy_max": 0.85}}
    (tmp_path / "metrics/models.json").write_text(json.dumps(models))
    (tmp_path / "sweep/recipe_on/models.json").write_text(json.dumps({"tl": {**models["tl"], "accuracy_mean": 0.7}}))
    # Validation curves scored at epochs 2 and 3 (steps 1, 2): the default kept epoch 3, the recipe's run epoch 2.
    for live, kept, curve in ((tmp_path / "dvclive", 3, "1\t0.5\n2\t0.6\n"),
                              (tmp_path / "sweep/recipe_on/dvclive", 2, "1\t0.55\n2\t0.4\n")):
        (live / "tl_s0/plots/metrics/eval").mkdir(parents=True)
        (live / "tl_s0/plots/metrics/eval/accuracy.tsv").write_text("step\taccuracy\n" + curve)
        (live / "tl_s0/params.yaml").write_text(f"seed: 0\nkept_epoch: {kept}\n")
    (tmp_path / "dvclive/tl_s0/params.yaml").write_text(
        "seed: 0\nkept_epoch: 3\nenvironment:\n  cpu: Some CPU\n  cpu_isa: avx avx2\n  gpus: none\n"
        "  tensorflow: 2.21.0\n")
    return tmp_path


def test_the_blocks_hold_known_values_from_constructed_metrics(project):
    blocks = ["README.md:answer", "README.md:crossover", "README.md:costs", "docs/recipe.md:recipe",
              "docs/sweeps.md:sweep-accuracy", "docs/sweeps.md:sweep-verdicts", "docs/sweeps.md:sweep-crossover"]
    assert update(project, check=True) == blocks
    assert (project / "README.md").read_text() == README, "--check changes nothing"
    assert update(project, check=False) == blocks
    text = (project / "README.md").read_text()
    assert "| transfer | tl − scratch | **supported** | +3.1 | [+1.2, +5.0] | 5 | decided |" in text
    assert "| cnn_vs_mlp | cnn − mlp | **inconclusive** | -0.4 | [n/a, n/a] | 1 | n/a |" in text
    assert ("Regime: 10 training images per class (image_folder), 3 epochs, 5 seeds per arm, transfer pretrained "
            f"on imagenet. Run on Some CPU (up to avx2), GPUs: none, TensorFlow 2.21.0; results committed "
            f"{date.today().isoformat()}.") in text
    assert "<!-- begin costs (generated) -->\n| a | b |\n|---|---|\n| make repro | 9 min |\n<!-- end costs -->" in text
    assert "stale" not in text and text.startswith("# Title\n") and update(project, check=True) == []
    recipe = (project / "docs/recipe.md").read_text()
    assert "| tl, validation accuracy % at the kept epochs | 60.0 | 55.0 |" in recipe
    assert "| tl, test accuracy % (range over seeds) | 80.0 (75.0-85.0) | 70.0 (75.0-85.0) |" in recipe
    assert "| transfer: tl − scratch | supported, +3.1 [+1.2, +5.0] | inconclusive, -2.1 [-5.0, +0.7] |" in recipe
    assert ("<!-- begin crossover (generated) -->\nMeasured: 20, 1,000 and all per class at 3 epochs; 10 per class "
            "at 10 epochs; 3 to 5 seeds per arm (tables and figures in [docs/sweeps.md](docs/sweeps.md)).\n\n"
            "**transfer**\n\n- At 3 epochs, the advantage is shown.\n<!-- end crossover -->") in text
    sweeps = (project / "docs/sweeps.md").read_text()
    assert "\n### transfer\n\n| a |\n|---|\n\n### init_only\n" in sweeps, "the sweep's tables one level down"
    assert "-->\n| epochs | examples per class | tl |\n|---|---|---|\n| 3 | 10 | 50.0 |\n<!-- end" in sweeps


def test_the_recipe_table_refuses_two_regimes(project):
    path = project / "sweep/recipe_on/comparisons.json"
    off = json.loads(path.read_text())
    off["regime"]["epochs"] = 10
    path.write_text(json.dumps(off))
    with pytest.raises(SystemExit, match="other regimes .epochs: 3 against 10."):
        update(project, check=True)


def test_a_declared_verdict_that_disagrees_with_the_details_is_an_error(project):
    (project / "metrics/hypothesis.json").write_text(json.dumps({"1_transfer": "contradicted"}))
    with pytest.raises(SystemExit, match="disagree on transfer"):
        update(project, check=True)


def test_make_results_keeps_the_knobs_and_each_verdict_in_words_not_the_intervals(project):
    drop, everything, keep, pattern = exp_show_columns(project)
    assert (drop, everything, keep) == ("--drop", ".*", "--keep")
    assert pattern == r"Experiment$|epochs$|examples_per_class$|1_transfer$|cnn_vs_mlp$"


def test_a_shallow_clone_keeps_the_readmes_date_and_a_full_one_checks_it(project, tmp_path_factory):
    """CI checks out one commit: the commit that last changed the results is not there to ask."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    update(project, check=False)
    readme = project / "README.md"
    readme.write_text(re.sub(r"results committed \S+\.", "results committed 2001-02-03.", readme.read_text()))
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "results"], cwd=project, check=True)
    assert update(project, check=True) == ["README.md:answer"], "a full clone knows the results' commit date"
    clone = tmp_path_factory.mktemp("shallow") / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", project.as_uri(), str(clone)], check=True)
    assert update(clone, check=True) == []
