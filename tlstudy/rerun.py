"""Where this machine's numbers stand from the committed ones.

    python -m tlstudy.rerun                                 # the first seed of every model, here
    python -m tlstudy.rerun --models resnet50_tl resnet50_scratch --seeds 0 1 2

Each run is trained and evaluated again on this machine with the committed params, code and data, into a
temporary folder (the workspace, dvc.lock and the DVC cache are left as they are), and set beside its
committed twin: the test accuracy of each, the difference, the test images whose predicted class differs,
and the difference as a multiple of the seed-to-seed spread of the committed runs of its model (the
spread the verdicts' intervals already carry). Same machine type: the same predictions, image for image.
Another CPU family runs other oneDNN kernels, and a run may move; the table says how far, against how
far one seed stands from another.

It needs the inputs of the train stage: after ``make repro``, or ``dvc pull`` from the shared remote, or
it runs ``dvc repro split pretrain`` first (the data and the pretrained backbones, a few minutes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tlstudy.config import read_params
from tlstudy.dvccli import dvc

# The pipeline's paths, as dvc.yaml's vars spell them for its stages.
PATHS = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["vars"][0]["paths"]


@dataclass
class Comparison:
    model: str
    seed: int
    committed: float  # test accuracy
    here: float
    changed: int  # test images whose predicted class differs
    images: int
    spread: float | None  # the sample standard deviation of the committed runs' accuracies of this model

    @property
    def difference(self) -> float:
        return self.here - self.committed

    @property
    def in_spreads(self) -> float | None:
        return None if not self.spread else self.difference / self.spread


def committed_accuracies(root: Path, model: str, seeds: list[int]) -> dict[int, float]:
    found = {}
    for seed in seeds:
        path = root / PATHS["eval"] / f"{model}_s{seed}.json"
        if path.exists():
            found[seed] = json.loads(path.read_text())["accuracy"]
    return found


def compare(model: str, seed: int, committed_dir: Path, here_dir: Path, accuracies: dict[int, float]) -> Comparison:
    """One run here against its committed twin, from the evaluate stage's metrics and predictions."""
    name = f"{model}_s{seed}"
    committed = pd.read_csv(committed_dir / PATHS["predictions"] / f"{name}.csv")
    here = pd.read_csv(here_dir / PATHS["predictions"] / f"{name}.csv")
    if len(committed) != len(here) or not committed["actual_label"].equals(here["actual_label"]):
        raise SystemExit(f"{name}: the test images differ from the committed run's; the data or the split "
                         "changed since the results were committed (dvc status says which)")
    values = list(accuracies.values())
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return Comparison(model, seed, accuracies[seed],
                      json.loads((here_dir / PATHS["eval"] / f"{name}.json").read_text())["accuracy"],
                      int((committed["predicted_label"] != here["predicted_label"]).sum()), len(here), spread)


def table(comparisons: list[Comparison]) -> str:
    rows = ["| run | committed | here | difference (points) | predictions changed | in seed spreads |",
            "|---|---|---|---|---|---|"]
    for c in comparisons:
        spreads = "n/a" if c.in_spreads is None else f"{c.in_spreads:+.2f}"
        rows.append(f"| {c.model} seed {c.seed} | {100 * c.committed:.2f} | {100 * c.here:.2f} | "
                    f"{100 * c.difference:+.2f} | {c.changed} of {c.images} | {spreads} |")
    return "\n".join(rows)


def summary(comparisons: list[Comparison]) -> str:
    identical = sum(c.changed == 0 for c in comparisons)
    text = f"{identical} of {len(comparisons)} runs gave the committed predictions image for image."
    if identical < len(comparisons):  # the run that moved most against its model's spread (or in points)
        worst = max(comparisons, key=lambda c: (c.in_spreads is not None, abs(c.in_spreads or c.difference)))
        text += (f" The largest move was {worst.model} seed {worst.seed}'s, {100 * worst.difference:+.2f} points"
                 + (f", {abs(worst.in_spreads):.2f} times its model's seed-to-seed spread."
                    if worst.in_spreads is not None else "."))
    return text


def run_here(model: str, seed: int, root: Path, out: Path) -> None:
    """The train and evaluate stages' commands (dvc.yaml's), outputs under ``out``."""
    name = f"{model}_s{seed}"
    model_file = str(out / PATHS["models"] / f"{name}.keras")
    for folder in (PATHS["eval"], PATHS["predictions"], PATHS["models"]):
        (out / folder).mkdir(parents=True, exist_ok=True)
    common = ["--seed", str(seed), "--processed", PATHS["processed"], "--split", PATHS["split"]]
    subprocess.run([sys.executable, "-m", "stages.train", "--model", model, *common,
                    "--out", model_file, "--live", str(out / PATHS["live"] / name),
                    "--init", f"{PATHS['init']}/{model}", "--resume", str(out / "resume" / name)],
                   cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "stages.evaluate", "--model-file", model_file,
                    *common, "--metrics", str(out / PATHS["eval"] / f"{name}.json"),
                    "--predictions", str(out / PATHS["predictions"] / f"{name}.csv")], cwd=root, check=True)


def machine(root: Path, model: str, seed: int) -> str:
    path = root / PATHS["live"] / f"{model}_s{seed}" / "params.yaml"
    env = (yaml.safe_load(path.read_text()) or {}).get("environment") if path.exists() else None
    return f"{env['cpu']} ({env['cpu_isa']})" if env else "not recorded"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="default: every model of train.models")
    parser.add_argument("--seeds", nargs="+", type=int, help="default: the first of train.seeds")
    parser.add_argument("--keep", type=Path, help="keep this machine's runs (models, metrics, predictions) here")
    args = parser.parse_args(argv)
    root = Path(".")
    params = read_params(root / "params.yaml")
    models, seeds = args.models or params["train"]["models"], args.seeds or params["train"]["seeds"][:1]
    trained = params["train"]
    edited = subprocess.run(["git", "status", "--porcelain", "--", "params.yaml", "dvc.yaml", "tlstudy", "stages"],
                            cwd=root, capture_output=True, text=True).stdout.strip()
    if edited:
        raise SystemExit("params, pipeline or code differ from the commit whose runs are compared:\n" + edited
                         + "\ncommit or stash them first (git stash), so that both sides ran the same inputs")
    for model in models:
        missing = [s for s in seeds if s not in committed_accuracies(root, model, [s])
                   or not (root / PATHS["predictions"] / f"{model}_s{s}.csv").exists()]
        if model not in trained["models"] or missing:
            raise SystemExit(f"{model}: no committed run of seed(s) {missing or seeds} to compare with; choose "
                             f"from train.models {trained['models']} and train.seeds {trained['seeds']}")
    if not (root / PATHS["processed"]).exists() or not (root / PATHS["init"]).exists():
        dvc("repro", "split", "pretrain", stdout=False, stderr=False)
    from tlstudy.provenance import environment  # TensorFlow's import, only once the arguments are good

    here = environment()
    print(f"Committed runs from {machine(root, models[0], seeds[0])}; here: {here['cpu']} ({here['cpu_isa']}).",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="rerun-") as tmp:
        out = args.keep or Path(tmp)
        comparisons = []
        for model in models:
            accuracies = committed_accuracies(root, model, params["train"]["seeds"])
            for seed in seeds:
                run_here(model, seed, root, out.resolve())
                comparisons.append(compare(model, seed, root, out, accuracies))
    print(table(comparisons))
    print(summary(comparisons))


if __name__ == "__main__":
    main()
