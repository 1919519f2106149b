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
    assert "cml comment update --watermark-title=pr-report pr-report/comment.md" in run["Comment"], "one comment"


def workflow(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github/workflows" / name).read_text())


@pytest.mark.parametrize("workflow_file", WORKFLOWS, ids=lambda p: p.name)
def test_a_new_run_cancels_the_one_it_supersedes(workflow_file):
    concurrency = yaml.safe_load(workflow_file.read_text()).get("concurrency") or {}
    assert "${{" in concurrency.get("group", ""), "a group per pull request, branch or grid"
    assert concurrency.get("cancel-in-progress") not in (None, False)


def test_pull_requests_run_the_fast_suite_and_main_the_whole_one_with_pip_cached_on_the_locks():
    test = workflow("test.yml")
    assert set(test["on"]) == {"pull_request", "push"} and test["on"]["push"]["branches"] == ["main"]
    steps = test["jobs"]["test"]["steps"]
    by_event = {step["if"]: step["run"] for step in steps if "run" in step}
    assert by_event == {"github.event_name == 'pull_request'": "make test-fast",
                        "github.event_name == 'push'": "make test"}
    python = next(step["with"] for step in steps if step.get("uses", "").startswith("actions/setup-python"))
    locks = sorted(p.name for p in ROOT.glob(python["cache-dependency-path"]))
    assert python["cache"] == "pip" and {"requirements-cpu.txt", "requirements-dev.txt"} <= set(locks), locks


def test_a_pull_request_without_the_secrets_gets_a_comment_not_a_red_run(tmp_path):
    """From a fork the secrets are empty: the check says so, every step that needs them is skipped, and the
    one that says what could not be done runs, without failing the run where it may not comment."""
    steps = workflow("pr-report.yml")["jobs"]["report"]["steps"]
    check = next(step for step in steps if step.get("id") == "secrets")
    for keys, expected in (({}, "present=false"), ({"AWS_ACCESS_KEY_ID": "k"}, "present=false"),
                           ({"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, "present=true")):
        output = tmp_path / "output"
        output.write_text("")
        env = {"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(output), **keys}
        subprocess.run(["bash", "-c", check["run"]], env=env, check=True)
        assert output.read_text().strip() == expected, keys
    after = steps[steps.index(check) + 1:]
    notice = [step for step in after if step.get("if") == "steps.secrets.outputs.present != 'true'"]
    assert len(notice) == 1 and notice[0]["continue-on-error"] is True
    assert "cml comment update --watermark-title=pr-report notice.md" in notice[0]["run"]
    assert "GITHUB_STEP_SUMMARY" in notice[0]["run"]
    for step in after:
        if step is not notice[0] and step.get("uses") != "iterative/setup-cml@v2":
            assert step.get("if") == "steps.secrets.outputs.present == 'true'", step


def test_sweep_workflow_shards_the_grid_and_collects_from_the_origin():
    shard = " ".join(steps("sweep.yml", "shard")["Run this shard and push each finished experiment"].split())
    assert "--shard ${{ matrix.shard }}/${{ inputs.shards }} --push origin" in shard
    assert shard.endswith(" --yes"), "dispatching the sweep is the confirmation: nobody answers in CI"
    collect = steps("sweep.yml", "collect")[
        "Every shard's experiments from the origin and the remote, each regime once"]
    assert "sweep collect --pull origin --failed 'shards/*/failed.md'" in collect
    plan = yaml.safe_load((ROOT / ".github/workflows/sweep.yml").read_text())["jobs"]["plan"]["steps"][0]["run"]
    plan = plan.replace("${{ inputs.shards }}", "3").replace('>> "$GITHUB_OUTPUT"', "")
    shards = subprocess.run(["bash", "-c", plan], capture_output=True, text=True, check=True).stdout.strip()
    assert shards == "shards=[1,2,3]", "the matrix: one job per shard"
