"""The declared metric, metrics/hypothesis.json: verdicts in words that DVC shows and diffs readably,
and a reader that takes the words or an older commit's numeric codes."""

import json
import os
import subprocess
import sys

import pytest

from stages.hypothesis import verdicts
from tlstudy.review import verdict_lines
from tlstudy.stats import read_verdicts


def comparison(code, delta, low, high, **extra):
    return {"verdict": code, "conclusion": "ignored", "delta": delta, "ci_low": low, "ci_high": high,
            "seeds_needed": 40, "accuracy_a": 0.7, "accuracy_b": 0.69, "a": "x", "b": "y", **extra}


# Today's default regime's four comparisons.
DETAILS = {"transfer": comparison(0, 0.00776, -0.028572, 0.044092),
           "init_only": comparison(1, 0.03432, 0.009666, 0.058974),
           "linear_probe": comparison(-1, -0.2, -0.25, -0.15),
           "cnn_vs_mlp": comparison(-1, -0.05292, -0.0991, -0.00674),
           "regime": {"epochs": 10, "seeds": 5}}


def test_known_codes_give_known_words_the_question_first_with_its_delta_and_interval_in_points():
    written = verdicts({**DETAILS, "init_only": comparison(2, 0.001, -0.004, 0.006)})
    assert written == {"1_transfer": "inconclusive", "1_transfer_ci": "+0.8 [-2.9,+4.4]",
                       "cnn_vs_mlp": "contradicted", "init_only": "no practical difference",
                       "linear_probe": "contradicted"}
    assert list(written)[0] == "1_transfer"
    assert verdicts({"transfer": comparison(1, 0.02, 0.001, 0.039)}) == {"1_transfer": "supported",
                                                                          "1_transfer_ci": "+2.0 [+0.1,+3.9]"}
    one_seed = verdicts({"transfer": comparison(0, 0.02, None, None)})
    assert one_seed == {"1_transfer": "inconclusive", "1_transfer_ci": "+2.0 [n/a]"}


def test_the_reader_takes_the_words_and_an_older_commits_numeric_codes():
    new = read_verdicts(verdicts(DETAILS))
    assert list(new) == ["transfer", "cnn_vs_mlp", "init_only", "linear_probe"]
    assert new["transfer"] == {"verdict": 0, "delta": pytest.approx(0.008), "ci_low": pytest.approx(-0.029),
                               "ci_high": pytest.approx(0.044)}
    assert new["init_only"] == {"verdict": 1, "delta": None, "ci_low": None, "ci_high": None}
    assert read_verdicts(verdicts({"transfer": comparison(0, 0.02, None, None)})) == {
        "transfer": {"verdict": 0, "delta": pytest.approx(0.02), "ci_low": None, "ci_high": None}}
    # metrics/hypothesis.json as commit 7956a0f holds it, nested and as `dvc metrics diff --json` flattens it.
    old = {"transfer": {"verdict": 0, "delta": 0.00776, "ci_low": -0.0286, "ci_high": 0.0441, "seeds_needed": 40},
           "cnn_vs_mlp": {"verdict": -1, "delta": -0.05292, "accuracy_a": 0.7098}}
    expected = {"cnn_vs_mlp": {"verdict": -1, "delta": -0.05292, "ci_low": None, "ci_high": None},
                "transfer": {"verdict": 0, "delta": 0.00776, "ci_low": -0.0286, "ci_high": 0.0441}}
    assert read_verdicts(old) == expected
    assert read_verdicts({f"{n}.{k}": v for n, c in old.items() for k, v in c.items()}) == expected


def test_a_pull_request_from_the_numeric_form_to_the_words_reads_as_one_comparison():
    base = {"transfer.verdict": 0, "transfer.delta": 0.004, "transfer.ci_low": -0.01, "transfer.ci_high": 0.018,
            "init_only.verdict": 1, "init_only.delta": 0.02, "init_only.ci_low": 0.001, "init_only.ci_high": 0.039}
    head = {"1_transfer": "supported", "1_transfer_ci": "+3.1 [+1.2,+5.0]", "init_only": "inconclusive"}
    diff = {"metrics/hypothesis.json": {**{k: {"old": v, "new": None} for k, v in base.items()},
                                        **{k: {"old": None, "new": v} for k, v in head.items()}}}
    # A secondary comparison's delta and interval come from head's comparisons.json.
    details = ({}, {"init_only": {"verdict": 0, "delta": 0.011, "ci_low": -0.004, "ci_high": 0.026}})
    assert verdict_lines(diff, details) == [
        "- **transfer**: supported (base: inconclusive, changed); delta +3.1 points, "
        "95% interval [+1.2, +5.0] (base: +0.4 [-1.0, +1.8])",
        "- **init_only**: inconclusive (base: supported, changed); delta +1.1 points, "
        "95% interval [-0.4, +2.6] (base: +2.0 [+0.1, +3.9])"]


def dvc(repo, *args):
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_dvc_metrics_show_fits_120_columns_and_diff_reads_in_six_rows_the_question_first(tmp_path):
    repo = tmp_path
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    (repo / "dvc.yaml").write_text("metrics:\n- metrics/hypothesis.json\n")
    (repo / "metrics").mkdir()
    path = repo / "metrics/hypothesis.json"
    path.write_text(json.dumps(verdicts(DETAILS)))
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], cwd=repo, check=True)
    shown = dvc(repo, "metrics", "show").splitlines()
    assert len(shown) == 2 and max(map(len, shown)) <= 120, shown
    assert shown[0].split()[:2] == ["Path", "1_transfer"]
    other = {name: comparison(code, 0.031, 0.002, 0.06) for name, code in (
        ("transfer", 1), ("init_only", 0), ("linear_probe", 0), ("cnn_vs_mlp", 1))}
    path.write_text(json.dumps(verdicts(other)))
    rows = dvc(repo, "metrics", "diff").splitlines()[1:]
    assert len(rows) == 5 and rows[0].split()[1:4] == ["1_transfer", "inconclusive", "supported"], rows
    assert rows[1].split()[1:] == ["1_transfer_ci", "+0.8", "[-2.9,+4.4]", "+3.1", "[+0.2,+6.0]", "-"], rows
