"""The pull-request workflow cannot run here; check that it parses and does what it promises."""

import yaml

from tests.conftest import ROOT


def test_pr_workflow_parses_and_posts_metrics_and_plots_diff():
    workflow = yaml.safe_load((ROOT / ".github/workflows/pr-report.yml").read_text())
    assert workflow["on"] == "pull_request"
    steps = workflow["jobs"]["report"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)
    assert "dvc exp run -n pr-base $SMALL" in script and "dvc exp run -n pr-head $SMALL" in script
    assert "dvc metrics diff pr-base pr-head --md" in script
    assert "dvc plots diff pr-base pr-head" in script and "cml comment create" in script
    assert any(step.get("uses", "").startswith("iterative/setup-cml") for step in steps)
