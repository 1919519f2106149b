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


def steps(workflow: str, job: str) -> dict[str, str]:
    jobs = yaml.safe_load((ROOT / ".github/workflows" / workflow).read_text())["jobs"]
    return {step.get("name", step.get("uses", "")): step.get("run", "") for step in jobs[job]["steps"]}


def test_pr_workflow_pulls_the_base_and_reruns_only_what_the_pull_request_changed():
    run = steps("pr-report.yml", "report")
    base = run["The base branch's results, from the remote"]
    assert "git checkout ${{ github.event.pull_request.base.sha }}" in base and "make pull" in base
    assert "repro" not in base and "exp run" not in base, "the base is never retrained"
    head = run["This pull request, running only what it changed"]
    assert head.splitlines()[-1] == "dvc repro" and "pull --allow-missing" in head
    assert "make pr-report BASE=${{ github.event.pull_request.base.sha }} HEAD=workspace" in run["Comment"]
    assert "cml comment create pr-report/comment.md" in run["Comment"]


def test_sweep_workflow_shards_the_grid_and_collects_from_the_origin():
    shard = " ".join(steps("sweep.yml", "shard")["Run this shard and push each finished experiment"].split())
    assert "--shard ${{ matrix.shard }}/${{ inputs.shards }} --push origin" in shard
    collect = steps("sweep.yml", "collect")[
        "Every shard's experiments from the origin and the remote, each regime once"]
    assert "sweep collect --pull origin --failed 'shards/*/failed.md'" in collect
    plan = yaml.safe_load((ROOT / ".github/workflows/sweep.yml").read_text())["jobs"]["plan"]["steps"][0]["run"]
    plan = plan.replace("${{ inputs.shards }}", "3").replace('>> "$GITHUB_OUTPUT"', "")
    shards = subprocess.run(["bash", "-c", plan], capture_output=True, text=True, check=True).stdout.strip()
    assert shards == "shards=[1,2,3]", "the matrix: one job per shard"
