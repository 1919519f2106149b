"""Study throughput: what one ResNet50 run of the default regime costs on this machine, stage by stage.

    make repro                          # first: this reuses its data, split and initial weights
    python -m benchmarks.study          # resnet50_scratch, seed 0; about 8 minutes on 2 CPU cores
    python -m benchmarks.study --model resnet50_ft --seed 1

Each stage runs exactly as ``dvc repro`` runs it (its command from dvc.yaml, resolved by DVC), in a
fresh process, in a scratch copy of what it reads, so the workspace is left alone. For each stage:
its wall time and its peak resident memory (the process's own ``ru_maxrss``). Then, in the same
run, the steady ``model.fit`` throughput of the model through the project's training path on as
many images (``benchmarks.throughput``), which gives

- the overhead ratio of the train stage: its wall time over the pure training compute for its
  images and epochs (images x epochs / steady images per second);
- ResNet50 runs per hour: 3600 s over the train and evaluate stages' wall time.

The hypothesis and report stages read every run's results: they run on a copy of the workspace's.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.throughput import measure_in_subprocess

ROOT = Path(__file__).resolve().parents[1]
# What the stages read beyond code and params: copied into the scratch directory.
INPUTS = ("data/raw", "data/processed", "data/split", "data/transfer_weights.json", "models/init", "metrics/eval",
          "plots/predictions", "plots/eda", "dvclive", "metrics/comparisons.json")


def stage_commands(names: list[str]) -> dict[str, str]:
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        stages = {stage.addressing: stage.cmd for stage in repo.index.stages}
    missing = [name for name in names if name not in stages]
    if missing:
        raise SystemExit(f"no stage {', '.join(missing)} in dvc.yaml (with params.yaml's train.models and seeds)")
    return {name: stages[name] for name in names}


# On Linux a process's peak resident memory starts at its parent's when it was forked (exec keeps the
# figure), and this benchmark holds TensorFlow and DVC: each stage is started by a bare interpreter,
# which reports the stage's peak (floor: the bare interpreter, about 10 MiB).
PEAK_OF_CHILD = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
                 "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
                 "sys.exit(code)")


def run_stage(command: str, cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one stage's process."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", PEAK_OF_CHILD, str(peak_file), *shlex.split(command)],
                                cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"{command} failed:\n{result.stderr[-3000:]}")
        return seconds, int(peak_file.read_text()) / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50_scratch", help="a ResNet50 arm in train.models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain", action="store_true", help="also the pretrain stage (minutes)")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    run = f"{args.model}-{args.seed}"
    names = ["data/dvc.yaml:fetch", "preprocess", "split", *(["pretrain"] if args.pretrain else []),
             f"train@{run}", f"evaluate@{run}", "hypothesis", "report"]
    commands = stage_commands(names)
    missing = [path for path in INPUTS if not (ROOT / path).exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `make repro` first")

    with tempfile.TemporaryDirectory(prefix="tlstudy-study-") as scratch:
        work = Path(scratch)
        for path in ("dvc.yaml", "params.yaml", "stages", "tlstudy", *INPUTS):
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            copy = shutil.copytree if (ROOT / path).is_dir() else shutil.copy2
            copy(ROOT / path, work / path)
        for directory in ("models", "metrics", "plots/study", "report"):
            (work / directory).mkdir(parents=True, exist_ok=True)
        print(f"{'stage':<32}{'wall s':>8}{'peak RSS MiB':>14}", flush=True)
        measured = {}
        for name, command in commands.items():
            measured[name] = run_stage(command, work)
            print(f"{name:<32}{measured[name][0]:>8.1f}{measured[name][1]:>14.0f}", flush=True)

    summary = json.loads((ROOT / "data/split/summary.json").read_text())
    images = sum(summary["train_per_class_by_seed"][str(args.seed)])
    epochs = int(params["epochs"])
    # The whole network trained, as the scratch arm trains it (the transfer arm's frozen phase is cheaper).
    # Four epochs: the rate is the median of epochs 2-4, and only the 4th validates, so the median is an
    # epoch of training alone (with three, it was the mean of a training and a validating epoch).
    rate = measure_in_subprocess("project", "resnet50_scratch", images, 4)
    train, evaluate = measured[f"train@{run}"][0], measured[f"evaluate@{run}"][0]
    compute = images * epochs / rate
    print(f"\n{args.model}: {images} images x {epochs} epochs; steady model.fit through the project's path "
          f"{rate:.1f} images/s, so {compute:.0f} s of pure training")
    print(f"overhead ratio of train@{run}: {train:.0f} s / {compute:.0f} s = {train / compute:.2f}")
    print(f"ResNet50 runs per hour (train + evaluate, {train + evaluate:.0f} s): {3600 / (train + evaluate):.1f}")


if __name__ == "__main__":
    main()
