"""The GitHub workflows cannot run here: validate them against GitHub's workflow schema (vendored in
check-jsonschema, offline), and check that each calls the project's commands, not copies of them."""

import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_githubs_schema(workflow):
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(workflow)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: pull_request\njobs:\n  report:\n    steps: 3\n")
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(broken)], capture_output=True, text=True)
    assert result.returncode != 0


def test_pr_workflow_runs_both_sides_and_posts_make_pr_report():
    workflow = yaml.safe_load((ROOT / ".github/workflows/pr-report.yml").read_text())
    script = "\n".join(step.get("run", "") for step in workflow["jobs"]["report"]["steps"])
    assert "dvc exp run -n pr-base $SMALL" in script and "dvc exp run -n pr-head $SMALL" in script
    assert "make pr-report BASE=pr-base HEAD=pr-head" in script
    assert "cml comment create pr-report/comment.md" in script
    assert "-S epochs=3" in workflow["jobs"]["report"]["env"]["SMALL"], "the card's top-level knobs"
