"""Study throughput: what one ResNet50 run of the default regime costs on this machine, stage by stage.

    make repro                          # first: this reuses its data, split and initial weights
    python -m benchmarks.study          # resnet50_scratch, seed 0; about 8 minutes on 2 CPU cores
    python -m benchmarks.study --model resnet50_ft --seed 1

Each stage runs exactly as ``dvc repro`` runs it (its command from dvc.yaml, resolved by DVC), in a
fresh process, in a scratch copy of what it reads, so the workspace is left alone. For each stage:
its wall time and its peak resident memory (the process's own ``ru_maxrss``). The train stage runs
under ``benchmarks.timed_stage``, which times its ``model.fit`` epochs and validations in that same
run, so the report gives

- where the train stage's time went: before training (imports, arrays, model build), training at
  the steady epoch rate (each fit's median epoch after the first, times its epochs: the pure
  training compute), the first epoch beyond that (graph tracing), validation and BatchNorm
  recalibration, and the rest;
- the overhead ratio of the train stage: its wall time over that pure training compute;
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

from benchmarks.timed_stage import breakdown, steady_epochs

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


def timed_command(command: str, timings: Path) -> str:
    """``python -m stages.X ...`` run under ``benchmarks.timed_stage``, which writes ``timings``."""
    words = shlex.split(command)
    if words[:2] != ["python", "-m"]:
        raise SystemExit(f"cannot time {command!r}: not `python -m <module> ...`")
    return shlex.join(["python", "-m", "benchmarks.timed_stage", str(timings), *words[2:]])


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
    train = f"train@{run}"
    missing = [path for path in INPUTS if not (ROOT / path).exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `make repro` first")

    with tempfile.TemporaryDirectory(prefix="tlstudy-study-") as scratch:
        work = Path(scratch)
        for path in ("dvc.yaml", "params.yaml", "stages", "tlstudy", "benchmarks", *INPUTS):
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            copy = shutil.copytree if (ROOT / path).is_dir() else shutil.copy2
            copy(ROOT / path, work / path)
        for directory in ("models", "metrics", "plots/study", "report"):
            (work / directory).mkdir(parents=True, exist_ok=True)
        print(f"{'stage':<32}{'wall s':>8}{'peak RSS MiB':>14}", flush=True)
        measured = {}
        timings_file = work / "train-timings.json"
        for name, command in commands.items():
            measured[name] = run_stage(timed_command(command, timings_file) if name == train else command, work)
            print(f"{name:<32}{measured[name][0]:>8.1f}{measured[name][1]:>14.0f}", flush=True)
        timings = json.loads(timings_file.read_text())

    summary = json.loads((ROOT / "data/split/summary.json").read_text())
    images = sum(summary["train_per_class_by_seed"][str(args.seed)])
    wall, evaluate = measured[train][0], measured[f"evaluate@{run}"][0]
    print(f"\n{train}, {images} images x {params['epochs']} epochs: where its {wall:.0f} s went "
          f"({wall - timings['total']:.1f} s of it outside the stage's code: interpreters starting and exiting)")
    for part, seconds in breakdown(timings):
        print(f"  {part:<72}{seconds:>7.1f} s")
    compute = steady_epochs(timings)
    if not compute:
        raise SystemExit(f"{train} trained no epochs (resumed from a finished checkpoint?): no overhead ratio")
    print(f"overhead ratio of {train}: {wall:.0f} s / {compute:.0f} s of training at the steady rate "
          f"= {wall / compute:.2f}")
    print(f"{args.model} runs per hour (train + evaluate, {wall + evaluate:.0f} s): {3600 / (wall + evaluate):.1f}")


if __name__ == "__main__":
    main()
