"""What `make repro` and `make sweep` say before they start (tlstudy/plan.py), on a constructed pipeline
and `dvc status`; and the Makefile's promises: apt never asks for a password, `make` alone lists the targets."""

import os
import subprocess

import pytest

from tests.conftest import ROOT
from tlstudy import plan
from tlstudy.sweep import KNOBS, confirm_cost, regimes

# (stage, a stage it depends on), as DVC's graph has them: one model of each kind, one seed.
EDGES = [("preprocess", "data/dvc.yaml:fetch"), ("split", "preprocess"), ("pretrain", "data/dvc.yaml:fetch"),
         ("train@mlp-0", "split"), ("train@resnet50_tl-0", "split"), ("train@resnet50_tl-0", "pretrain"),
         ("evaluate@mlp-0", "train@mlp-0"), ("evaluate@resnet50_tl-0", "train@resnet50_tl-0"),
         ("hypothesis", "evaluate@mlp-0"), ("hypothesis", "evaluate@resnet50_tl-0"), ("report", "hypothesis")]
PARAMS = {"preprocess": ["data.task"], "split": ["split", "examples_per_class"], "pretrain": ["pretrain"],
          "train@mlp-0": ["epochs", "models.mlp"], "train@resnet50_tl-0": ["epochs", "models.resnet50_tl"],
          "evaluate@mlp-0": ["evaluate"], "evaluate@resnet50_tl-0": ["evaluate"], "hypothesis": ["hypothesis"],
          "report": []}


def test_a_changed_stage_reruns_everything_downstream_and_nothing_upstream():
    # `dvc status --json` after editing the MLP's params: only its train stage is reported.
    status = {"train@mlp-0": [{"changed deps": {"params.yaml": {"models.mlp": "modified"}}}]}
    assert plan.to_run(set(status), EDGES) == {"train@mlp-0", "evaluate@mlp-0", "hypothesis", "report"}
    assert plan.to_run({"pretrain"}, EDGES) == {"pretrain", "train@resnet50_tl-0", "evaluate@resnet50_tl-0",
                                                "hypothesis", "report"}
    assert plan.to_run(set(), EDGES) == set()


def test_stages_counted_by_kind_and_timed_from_the_table():
    stages = {"data/dvc.yaml:fetch", "pretrain", "train@resnet50_tl-0", "train@resnet50_ft-1",
              "evaluate@resnet50_tl-0", "train@mlp-0", "evaluate@cnn-2", "report"}
    counts, low, high = plan.estimate(stages)
    assert counts == {"other": 2, "pretrain": 1, "ResNet50 train": 2, "ResNet50 evaluate": 1,
                      "MLP/CNN train": 1, "MLP/CNN evaluate": 1}
    assert (low, high) == (128 + 2 * 87 + 23 + 8 + 5, 128 + 2 * 120 + 36 + 13 + 7)
    text = plan.describe(counts, low, high, "dvc repro will run")
    assert text.startswith("dvc repro will run: 8 stages, about 6 min to 7 min (times measured on 2 cores")
    assert "    2 ResNet50 train     87-120 s each" in text


def test_train_stages_scale_with_images_times_epochs_above_their_evaluate_stage():
    # 'all' is 6,000 per class: 60 times the measured 100, and 30 epochs are 3 times 10.
    _, low, high = plan.estimate({"train@resnet50_scratch-0"}, "all", 30)
    assert (low, high) == (23 + (87 - 23) * 180, 36 + (120 - 36) * 180)
    _, low, _ = plan.estimate({"train@mlp-0"}, 10, 5)
    assert low == 5 + (8 - 5) * 0.05


def test_the_stages_a_sweep_reruns_are_those_reading_a_knob_and_after():
    assert plan.to_run(plan.reading(PARAMS, KNOBS), EDGES) == set(PARAMS) - {"preprocess", "pretrain"}
    assert plan.reading({"a": ["train"]}, ("train.seeds",)) == {"a"}, "a whole section read"
    assert plan.reading({"a": ["train.seeds_extra"]}, ("train.seeds",)) == set()


def test_a_sweep_says_its_cost_and_asks_past_the_threshold(capsys):
    big = regimes(["10", "100", "1000", "all"], ["3", "10", "30"])
    with pytest.raises(SystemExit, match="pass --yes"):
        confirm_cost(big, 2, yes=False, ask=None, pipeline=(EDGES, PARAMS))
    out = capsys.readouterr().out
    # Per regime: split, hypothesis and report untimed; the two evaluates (5 + 23 s); the two train stages,
    # each its evaluate's time plus the rest scaled ((8 - 5) s and (87 - 23) s at the measured regime).
    scale = sum(plan.train_scale(e, n) for e, n in big)
    assert f"12 runs of 7 stages each, about {plan.duration(12 * (28 + 28) + (3 + 64) * scale)} to" in out
    confirm_cost(big, 2, yes=True, ask=None, pipeline=(EDGES, PARAMS))
    with pytest.raises(SystemExit, match="not started"):
        confirm_cost(big, 2, yes=False, ask=lambda prompt: "n", pipeline=(EDGES, PARAMS))
    confirm_cost(big, 2, yes=False, ask=lambda prompt: "y", pipeline=(EDGES, PARAMS))

    def never(prompt):
        raise AssertionError("asked below the threshold")
    confirm_cost([("10", "3")], 2, yes=False, ask=never, pipeline=(EDGES, PARAMS))


def stub(folder, name, body):
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("uid, sudo_ok", [(1000, False), (1000, True), (0, False)])
def test_apt_never_asks_for_a_password(tmp_path, uid, sudo_ok):
    """Stand-ins for id, sudo and apt-get: not root, sudo runs only with -n (where it would otherwise
    prompt), and without password-less sudo the set-up says so in one line and goes on."""
    calls = tmp_path / "calls"
    stub(tmp_path, "id", f"echo {uid}")
    then = 'shift; exec "$@"' if sudo_ok else "exit 1"  # with -n: run it, or fail where a password is needed
    stub(tmp_path, "sudo", f'echo "sudo $*" >> {calls}; [ "$1" = -n ] || {{ echo "password:"; exit 1; }}; {then}')
    stub(tmp_path, "apt-get", f'echo "apt-get $*" >> {calls}')
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run(["make", "-s", "-C", str(ROOT), "dataset", f"FASHION_MNIST_SYSTEM={tmp_path}/none"],
                            env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 0, result.stderr
    logged = calls.read_text().splitlines() if calls.exists() else []
    assert all(line.startswith("sudo -n ") for line in logged if line.startswith("sudo")), logged
    installs = [line for line in logged if line.startswith("apt-get install")]
    if uid == 1000 and not sudo_ok:
        assert result.stdout == ("Not root, and no sudo without a password: the fetch stage will download "
                                 "Fashion-MNIST (or first: sudo apt-get install dataset-fashion-mnist).\n")
        assert installs == []
    else:
        assert installs == ["apt-get install -y -qq dataset-fashion-mnist"], logged
        assert ("sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist" in logged) \
            == (uid != 0)


def test_make_alone_lists_every_target_in_one_line():
    phony = subprocess.run(["make", "-C", str(ROOT), "-pn", "help"], capture_output=True, text=True).stdout
    targets = next(line for line in phony.splitlines() if line.startswith(".PHONY:")).split()[1:]
    shown = subprocess.run(["make", "-s", "-C", str(ROOT)], capture_output=True, text=True, check=True).stdout
    listed = [line.split()[1] for line in shown.splitlines()]
    assert sorted(listed) == sorted(targets), "every target once, one line each, and `make` alone shows them"
