"""Working as a team: results and experiments that travel through a real S3 server (SeaweedFS) and a
shared git origin, and the faults a remote can have. MLP and CNN on the tiny profile: the models
are not what these test."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from tests.conftest import copy_repo, scratch_dir
from tests.s3server import seaweedfs, wait_until_idle
from tests.test_pipeline import FETCH, project_env, run, stages_run

pytestmark = pytest.mark.slow
DVC = (sys.executable, "-m", "dvc")
RESULTS = ("metrics/hypothesis.json", "metrics/comparisons.json", "metrics/models.json", "dvc.lock")


def add_remote(repo: Path, name: str, url: str, endpoint: str, secret: str, default: bool = False,
               local: bool = False) -> None:
    """A remote as docs/team.md adds it: address in .dvc/config (``local``: in config.local),
    credentials in .dvc/config.local, never in git."""
    scope = ["--local"] if local else []
    run(repo, *DVC, "remote", "add", *scope, *(["-d"] if default else []), "-f", name, url)
    run(repo, *DVC, "remote", "modify", *scope, name, "endpointurl", endpoint)
    run(repo, *DVC, "remote", "modify", "--local", name, "access_key_id", "tlstudy-test")
    run(repo, *DVC, "remote", "modify", "--local", name, "secret_access_key", secret)


def clone(origin: Path, target: Path, s3) -> Path:
    run(origin.parent, "git", "clone", "-q", "-b", "main", str(origin), str(target))
    run(target, *DVC, "remote", "modify", "--local", "store", "access_key_id", s3.access_key)
    run(target, *DVC, "remote", "modify", "--local", "store", "secret_access_key", s3.secret_key)
    return target


def timed(repo: Path, *args: str) -> tuple[str, float]:
    start = time.monotonic()
    output = run(repo, *args)
    return output, time.monotonic() - start


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def team(plumbing_base, request, tmp_path_factory):
    """A real S3 server; clone A ran the pipeline (the plumbing profile), pushed its results to the
    remote and its commit to the shared origin (a bare repository). Each test makes its own clones in
    its ``tmp_path``, removed when it passes: the module's clones together would take ~6 GB of disk."""
    with scratch_dir(request, tmp_path_factory, "team") as root, seaweedfs(root / "s3") as s3:
        origin = root / "origin.git"
        run(root, "git", "init", "-q", "--bare", "-b", "main", str(origin))
        a = copy_repo(plumbing_base, root / "a")
        add_remote(a, "store", "s3://tlstudy/cache", s3.endpoint, s3.secret_key, default=True)
        assert "secret" not in (a / ".dvc/config").read_text(), "credentials stay out of git"
        assert stages_run(run(a, *DVC, "repro")) == {FETCH}, "the copy is up to date"
        run(a, "git", "add", "-A")
        run(a, "git", "commit", "-qm", "results, and the team's remote")
        run(a, "git", "remote", "add", "origin", str(origin))
        run(a, "git", "push", "-q", "origin", "HEAD:main")
        _, push_seconds = timed(a, sys.executable, "-m", "tlstudy.remote", "push")
        yield {"s3": s3, "origin": origin, "a": a, "push_seconds": push_seconds}


def test_a_fresh_clone_pulls_the_results_and_reruns_nothing(team, tmp_path):
    b = clone(team["origin"], tmp_path / "b", team["s3"])
    _, pull_seconds = timed(b, sys.executable, "-m", "tlstudy.remote", "pull")
    output, repro_seconds = timed(b, *DVC, "repro")
    # fetch always runs (it checks data that may live outside the repository), and finds the pulled
    # files verified; nothing after it re-runs.
    assert stages_run(output) == {FETCH}, output
    for name in RESULTS:
        assert (b / name).read_bytes() == (team["a"] / name).read_bytes(), name
    assert md5(b / "models/cnn_s1.keras") == md5(team["a"] / "models/cnn_s1.keras")
    print(f"\npush {team['push_seconds']:.1f} s; fresh clone: pull {pull_seconds:.1f} s, repro {repro_seconds:.1f} s")


def test_experiments_travel_through_the_origin_and_the_remote(team, tmp_path):
    """A teammate's clone pulls the results, runs an experiment and pushes it; a third clone pulls it."""
    a = clone(team["origin"], tmp_path / "teammate", team["s3"])
    run(a, sys.executable, "-m", "tlstudy.remote", "pull")
    run(a, *DVC, "exp", "run", "-S", "epochs=3", "-n", "three-epochs")
    run(a, *DVC, "exp", "push", "origin", "three-epochs")  # git refs to origin, outputs to the remote
    c = clone(team["origin"], tmp_path / "c", team["s3"])
    run(c, *DVC, "exp", "pull", "origin", "three-epochs")
    shown = json.loads(run(c, *DVC, "exp", "show", "--json"))
    names = [exp["name"] for commit in shown for exp in (commit.get("experiments") or [])]
    assert "three-epochs" in names
    collected = run(c, sys.executable, "-m", "tlstudy.sweep", "collect", "--out", "sweep")
    assert "2 experiments collected" in collected  # the commit's own results, and the pulled experiment
    assert "three-epochs" in (c / "sweep/accuracy.csv").read_text()
    # Its outputs came from the remote with it: applied, they are A's, byte for byte.
    ref = next(line for line in run(a, "git", "for-each-ref", "--format=%(refname)", "refs/exps").splitlines()
               if line.endswith("/three-epochs"))
    run(c, *DVC, "exp", "apply", "three-epochs")
    assert (c / "metrics/hypothesis.json").read_text() == run(a, "git", "show", f"{ref}:metrics/hypothesis.json")
    lock = run(a, "git", "show", f"{ref}:dvc.lock")
    cnn = next(o for o in yaml.safe_load(lock)["stages"]["train@cnn-1"]["outs"] if o["path"].endswith(".keras"))
    assert md5(c / "models/cnn_s1.keras") == cnn["md5"]


def failing_push(repo: Path, remote: str) -> subprocess.CompletedProcess:
    before = {name: (repo / name).read_bytes() for name in RESULTS}
    result = subprocess.run([sys.executable, "-m", "tlstudy.remote", "push", "--remote", remote], cwd=repo,
                            env=project_env(), capture_output=True, text=True)
    assert result.returncode == 1
    assert {name: (repo / name).read_bytes() for name in RESULTS} == before, "local results untouched"
    return result


def test_an_unreachable_remote_is_one_line_naming_it_and_the_fix(team):
    a = team["a"]
    add_remote(a, "offline", "s3://tlstudy/offline", "http://127.0.0.1:9", team["s3"].secret_key, local=True)
    lines = failing_push(a, "offline").stderr.strip().splitlines()
    assert len(lines) == 1 and "'offline'" in lines[0] and "unreachable" in lines[0], lines
    assert "dvc remote modify offline endpointurl" in lines[0]


def test_wrong_credentials_are_one_line_naming_the_remote_and_the_fix(team):
    a = team["a"]
    add_remote(a, "wrongkeys", "s3://tlstudy/wrongkeys", team["s3"].endpoint, "not-the-secret", local=True)
    lines = failing_push(a, "wrongkeys").stderr.strip().splitlines()
    assert len(lines) == 1 and "'wrongkeys'" in lines[0] and "refused the credentials" in lines[0], lines
    assert "dvc remote modify --local wrongkeys access_key_id" in lines[0]


def test_a_push_killed_midway_completes_on_the_next_push(team, tmp_path):
    """SIGKILL while the 220 MB processed dataset is on its way; the next push completes, and a fresh
    clone pulls every output byte for byte."""
    a, s3 = team["a"], team["s3"]
    add_remote(a, "second", "s3://tlstudy/second", s3.endpoint, s3.secret_key, local=True)
    process = subprocess.Popen([*DVC, "push", "--remote", "second"], cwd=a, env=project_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(1.5)
    assert process.poll() is None, "the push ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # The server finishes the dead client's requests first (docs/team.md): pushing again at
    # once raced them, and an object the new push had written was gone afterwards.
    wait_until_idle(s3, "tlstudy/second")
    run(a, sys.executable, "-m", "tlstudy.remote", "push", "--remote", "second")

    d = clone(team["origin"], tmp_path / "d", s3)
    add_remote(d, "second", "s3://tlstudy/second", s3.endpoint, s3.secret_key, local=True)
    run(d, *DVC, "pull", "--remote", "second")
    for name in ("data/processed/dataset.npz", "models/mlp_s0.keras", "models/cnn_s1.keras"):
        assert md5(d / name) == md5(a / name), name
    assert run(d, *DVC, "status").split() == [f"{FETCH}:", "always", "changed"], "the rest as dvc.lock records it"


def test_a_sweep_sharded_over_two_workers_is_collected_once_per_regime(team, tmp_path):
    """Two worker clones run their shares at once, one core each, and push what finished; a third
    collects from the origin and the remote: every regime once, the failed one named with its log."""
    examples, epochs = "5,10,7000", "1,2"  # 7000 per class is more than Fashion-MNIST has: split fails
    # An origin of its own: the commit without the experiments other tests pushed.
    origin = tmp_path / "sweep-origin.git"
    run(tmp_path, "git", "clone", "-q", "--bare", str(team["origin"]), str(origin))
    workers = []
    for i in (1, 2):
        worker = clone(origin, tmp_path / f"worker{i}", team["s3"])
        run(worker, sys.executable, "-m", "tlstudy.remote", "pull")
        command = [sys.executable, "-m", "tlstudy.sweep", "run", "--examples", examples, "--epochs", epochs,
                   "--shard", f"{i}/2", "--push", "origin", "--out", "sweep"]
        cores = ["taskset", "-c", str(i - 1)] if shutil.which("taskset") and os.cpu_count() >= 2 else []
        workers.append(subprocess.Popen([*cores, *command], cwd=worker, env=project_env(), text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = []
    for process in workers:
        output, _ = process.communicate(timeout=1800)
        assert process.returncode == 0, output[-3000:]
        outputs.append(output)
    for i, output in enumerate(outputs, 1):  # each worker ran its share and pushed what finished
        shard = [name for name in ("n5-e1", "n10-e1", "n7000-e1", "n5-e2", "n10-e2", "n7000-e2")[i - 1::2]
                 if "7000" not in name]
        assert f"pushed 2 experiments to origin: {', '.join(shard)}" in output, output[-4000:]

    collector = clone(origin, tmp_path / "collector", team["s3"])
    failed = [str(tmp_path / f"worker{i}/sweep/failed.md") for i in (1, 2)]  # the shards' artifacts
    run(collector, sys.executable, "-m", "tlstudy.sweep", "collect", "--pull", "origin", "--out", "sweep",
        *(arg for path in failed for arg in ("--failed", path)))
    accuracy = pd.read_csv(collector / "sweep/accuracy.csv", dtype={"examples_per_class": str})
    collected = sorted(zip(accuracy["examples_per_class"], accuracy["epochs"]))
    assert sorted(set(collected)) == [("10", 1), ("10", 2), ("5", 1), ("5", 2)]
    # Each regime once, two models each: n5-e2 is the commit's own regime (the tiny profile), so the
    # commit's results stand for it and the experiment is left out as a repeat.
    assert len(collected) == 4 * 2
    assert {"n10-e1", "n10-e2", "n5-e1"} <= set(accuracy["experiment"])
    report = (collector / "sweep/failed.md").read_text()
    assert report.count("\n## ") == 2 and "## n7000-e1" in report and "## n7000-e2" in report
    assert "7000" in report.split("## n7000-e1", 1)[1], "with its log"
    assert "cnn_vs_mlp" in (collector / "sweep/table.md").read_text()
    assert Image.open(collector / "sweep/data_efficiency.png").size[0] > 100
