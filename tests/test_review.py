"""What a pull request's reviewer sees: `make pr-report`'s comment, and DVC's plots page opened in a
real browser with no network. On an MLP-and-CNN tiny profile: the models are not what these test."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, copy_repo, scratch_dir
from tests.test_pipeline import FETCH, run
from tlstudy.readme import exp_show_columns
from tlstudy.review import verdict_lines
from tlstudy.stats import VERDICT_WORDS

ARTIFACTS = ROOT / "test-artifacts"  # screenshots, for a person to look at (git-ignored)


@pytest.fixture(scope="module")
def two_commits(plumbing_base, request, tmp_path_factory):
    """A base commit (2 epochs) and a head commit (3 epochs, by `dvc exp run -S epochs=3` as the card
    spells it), each with its results committed."""
    with scratch_dir(request, tmp_path_factory, "review") as root:
        repo = copy_repo(plumbing_base, root / "repo")
        (root / "exp_run.log").write_text(run(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", "epochs=3"))
        run(repo, "git", "add", "-A")
        run(repo, "git", "commit", "-qm", "head: 3 epochs")
        yield repo


def committed(repo: Path, rev: str, path: str) -> dict:
    return json.loads(subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, text=True,
                                     check=True).stdout)


@pytest.mark.slow
def test_pr_report_leads_with_verdicts_then_metrics_then_every_plot_as_a_png(two_commits):
    repo = two_commits
    run(repo, sys.executable, "-m", "tlstudy.review", "--base", "HEAD~1", "--head", "HEAD", "--out", "pr-report")
    comment = (repo / "pr-report/comment.md").read_text()
    base, head = (committed(repo, rev, "metrics/comparisons.json")["cnn_vs_mlp"] for rev in ("HEAD~1", "HEAD"))
    line = next(line for line in comment.splitlines() if line.startswith("- **cnn_vs_mlp**"))
    assert line.startswith(f"- **cnn_vs_mlp**: {VERDICT_WORDS[head['verdict']]} "
                           f"(base: {VERDICT_WORDS[base['verdict']]}")
    assert f"delta {100 * head['delta']:+.1f} points" in line and f"(base: {100 * base['delta']:+.1f}" in line
    assert comment.index("### Verdicts") < comment.index("### Metrics") < comment.index("## Plots")
    assert "| metrics/hypothesis.json" in comment and "| cnn_vs_mlp " in comment, "dvc metrics diff --md"
    # Every plot DVC knows, each linked image a real PNG.
    plots = json.loads(subprocess.run([sys.executable, "-m", "dvc", "plots", "diff", "--json", "-o",
                                       str(repo / "tmp_plots"), "HEAD~1", "HEAD"], cwd=repo, capture_output=True,
                                      text=True, check=True).stdout)
    entries = sum(len(v) for v in plots["data"].values())
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", comment)
    assert len(links) == entries > 0
    for link in links:
        with Image.open(repo / "pr-report" / link) as image:
            assert image.format == "PNG" and image.width > 50


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed; `make test` installs Debian's chromium where apt exists")
    return path


def open_offline(page: Path, screenshot: Path) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and the browser console's messages; no network at all."""
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=http://127.0.0.1:9",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=30000", "--enable-logging=stderr",
             "--v=0", "--window-size=1400,5000"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=300)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*flags, f"--screenshot={screenshot}", page.as_uri()], capture_output=True, timeout=300)
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    return dom.stdout, console


def test_the_browser_check_sees_a_blank_chart_and_a_script_error(tmp_path):
    """The check itself: a page whose library never loads (DVC's default, offline) draws nothing and logs."""
    page = tmp_path / "cdn.html"
    page.write_text('<html><head><script src="https://cdn.jsdelivr.net/npm/vega@5"></script></head><body>'
                    '<div id="p"></div><script>vegaEmbed("#p", {"mark": "bar"});</script></body></html>')
    dom, console = open_offline(page, tmp_path / "cdn.png")
    assert dom.count('class="marks"') == 0 and any("vegaEmbed is not defined" in line for line in console)


@pytest.mark.slow
def test_dvc_plots_diff_draws_every_chart_offline_in_chromium(two_commits):
    repo = two_commits
    run(repo, sys.executable, "-m", "dvc", "plots", "diff", "HEAD~1", "HEAD", "-o", "dvc_plots")
    page = repo / "dvc_plots/index.html"
    source = page.read_text()
    assert "cdn.jsdelivr" not in source and "vegaEmbed(" in source, "the offline template (.dvc/config)"
    dom, console = open_offline(page, ARTIFACTS / "plots-diff.png")
    assert dom.count('class="marks"') == source.count("vegaEmbed("), "every vega plot drawn"
    # vega-embed notes once per chart that DVC's vega-lite v5 specs compile for Vega v5 while the
    # bundle's runtime is Vega 6; anything else in the console is a failure.
    version_note = "The compiled spec uses Vega v5, but current version is v6"
    assert [line for line in console if version_note not in line] == [], "no script error"
    assert (ARTIFACTS / "plots-diff.png").stat().st_size > 10_000


@pytest.mark.slow
def test_metrics_and_experiments_lead_with_the_verdicts_in_a_readable_width(two_commits):
    repo = two_commits
    diff = run(repo, sys.executable, "-m", "dvc", "metrics", "diff", "--all", "--md", "HEAD~1", "HEAD")
    rows = [line for line in diff.splitlines() if line.startswith("| metrics/")]
    # The tiny profile trains the MLP and the CNN only: one comparison, secondary, its verdict in words.
    assert [row.split("|")[2].strip() for row in rows] == ["cnn_vs_mlp"], "only the verdicts"
    words = [committed(repo, rev, "metrics/hypothesis.json")["cnn_vs_mlp"] for rev in ("HEAD~1", "HEAD")]
    assert set(words) <= set(VERDICT_WORDS.values())
    shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--no-pager", *exp_show_columns(repo)],
                           cwd=repo, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    lines = shown.stdout.splitlines()
    assert shown.returncode == 0 and max(len(line) for line in lines) <= 120
    header = next(line for line in lines if "Experiment" in line)
    assert "cnn_vs_mlp" in header
    assert "examples_per_class" in header and "epochs" in header


@pytest.mark.slow
def test_the_cards_exp_run_epochs_reruns_only_train_evaluate_report(two_commits):
    ran = set(re.findall(r"Running stage '([^']+)'", (two_commits.parent / "exp_run.log").read_text()))
    runs = {f"{stage}@{m}-{s}" for stage in ("train", "evaluate") for m in ("mlp", "cnn") for s in (0, 1)}
    assert ran == {FETCH, "hypothesis", "report"} | runs
    curve = (two_commits / "dvclive/mlp_s0/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(curve) == 1 + 3  # header and three epochs
    assert "epochs: 3" in (two_commits / "params.yaml").read_text()


@pytest.mark.slow
def test_dvc_repro_train_targets_every_train_stage_and_nothing_after(two_commits):
    """The card's train_mlp, train_cnn, ... are train@<model>-<seed>; `dvc repro train` covers them all."""
    output = run(two_commits, sys.executable, "-m", "dvc", "repro", "--dry", "--force", "train")
    ran = set(re.findall(r"Running stage '([^']+)'", output))
    assert {s for s in ran if s.startswith("train@")} == {f"train@{m}-{s}" for m in ("mlp", "cnn") for s in (0, 1)}
    assert not {s for s in ran if s.startswith(("evaluate", "hypothesis", "report"))}


@pytest.mark.slow
def test_the_cards_examples_per_class_knob_reruns_split_and_after_only(two_commits, tmp_path):
    """`dvc exp run -S examples_per_class=3`, as typed, in a copy of the repository (the other tests
    keep theirs)."""
    repo = tmp_path / "copy"
    shutil.copytree(two_commits, repo, symlinks=True)
    output = run(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", "examples_per_class=3")
    ran = set(re.findall(r"Running stage '([^']+)'", output))
    runs = {f"{stage}@{m}-{s}" for stage in ("train", "evaluate") for m in ("mlp", "cnn") for s in (0, 1)}
    assert ran == {FETCH, "split", "hypothesis", "report"} | runs
    assert json.loads((repo / "metrics/comparisons.json").read_text())["regime"]["trained_per_class"] == 3.0


def test_verdict_lines_read_base_and_head_from_dvc_metrics_diff():
    """Known answers from a constructed `dvc metrics diff --all --json`."""
    diff = {"metrics/hypothesis.json": {
        "transfer.verdict": {"old": 0, "new": 1, "diff": 1}, "transfer.delta": {"old": 0.004, "new": 0.031},
        "transfer.ci_low": {"old": -0.01, "new": 0.012}, "transfer.ci_high": {"old": 0.018, "new": 0.05},
        "cnn_vs_mlp.verdict": {"old": -1, "new": -1}, "cnn_vs_mlp.delta": {"old": -0.06, "new": -0.06}}}
    lines = verdict_lines(diff)
    assert lines[0] == ("- **cnn_vs_mlp**: contradicted (base: contradicted, unchanged); delta -6.0 points, "
                        "95% interval [n/a, n/a] (base: -6.0 [n/a, n/a])")
    assert lines[1] == ("- **transfer**: supported (base: inconclusive, changed); delta +3.1 points, "
                        "95% interval [+1.2, +5.0] (base: +0.4 [-1.0, +1.8])")
    assert verdict_lines({}) == ["- no comparison in metrics/hypothesis.json on either side"]
