"""What `dvc repro` is about to run, and roughly how long that takes, said before it starts.

    python -m tlstudy.plan        # `make repro` prints this first

The stages to run are those `dvc status` reports changed and every stage downstream of them (DVC re-runs
a stage whose inputs another stage rewrites; its run cache may still restore some, so the count is at
most). The time multiplies the number of stages of each kind by what that kind took in a fresh clone's
`make repro` of the default regime on 2 cores of an AMD EPYC with AVX-512 (`/usr/bin/time make repro`,
the stages' own times from its log): another machine takes another time, a GPU far less. Train stages
are scaled to the regime's examples per class times epochs. `tlstudy.sweep run` uses the same table.
"""

from __future__ import annotations

import networkx as nx

from tlstudy.params import load_params

MACHINE = "2 cores of an AMD EPYC with AVX-512"
# Seconds per stage, (fastest, slowest), in the default regime's fresh `make repro` on MACHINE.
SECONDS = {
    "pretrain": (128, 128),  # one run: 2.1 min
    "ResNet50 train": (87, 120),
    "ResNet50 evaluate": (23, 36),
    "MLP/CNN train": (8, 13),
    "MLP/CNN evaluate": (5, 7),
}
OTHER = "other"  # fetch, preprocess, split, hypothesis, report: not timed one by one
# The regime those train times are for; all = Fashion-MNIST's 6,000 training images per class.
MEASURED_EXAMPLES, MEASURED_EPOCHS, ALL_PER_CLASS = 100, 10, 6000


def kind(stage: str) -> str:
    """``train@resnet50_tl-3`` -> ``ResNet50 train``; ``evaluate@mlp-0`` -> ``MLP/CNN evaluate``."""
    name = stage.rsplit(":", 1)[-1]  # data/dvc.yaml:fetch -> fetch
    base, _, item = name.partition("@")
    if base == "pretrain":
        return "pretrain"
    if base in ("train", "evaluate") and item:
        return f"{'ResNet50' if item.startswith('resnet') else 'MLP/CNN'} {base}"
    return OTHER


def to_run(changed: set[str], edges: list[tuple[str, str]]) -> set[str]:
    """The changed stages and everything downstream; ``edges`` are (stage, a stage it depends on)."""
    graph = nx.DiGraph(edges)
    downstream = set(changed)
    for stage in changed:
        if stage in graph:
            downstream |= nx.ancestors(graph, stage)
    return downstream


def train_scale(examples, epochs) -> float:
    """How many times the measured regime's training images times epochs this regime trains on."""
    per_class = ALL_PER_CLASS if str(examples) == "all" else int(examples)
    return per_class * int(epochs) / (MEASURED_EXAMPLES * MEASURED_EPOCHS)


def estimate(stages, examples=MEASURED_EXAMPLES, epochs=MEASURED_EPOCHS) -> tuple[dict[str, int], float, float]:
    """Stages counted by kind, and the (low, high) seconds they take on MACHINE. A train stage's fixed
    part (imports, building the model, loading data) is taken as its model's evaluate stage, and only
    the rest scales with the images and epochs it trains on."""
    counts: dict[str, int] = {}
    for stage in stages:
        counts[kind(stage)] = counts.get(kind(stage), 0) + 1
    scale = train_scale(examples, epochs)
    low = high = 0.0
    for name, n in counts.items():
        lo, hi = SECONDS.get(name, (0, 0))
        if name.endswith(" train"):
            fixed = SECONDS[name.replace("train", "evaluate")]
            lo, hi = fixed[0] + (lo - fixed[0]) * scale, fixed[1] + (hi - fixed[1]) * scale
        low, high = low + n * lo, high + n * hi
    return counts, low, high


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe(counts: dict[str, int], low: float, high: float, what: str) -> str:
    if not counts:
        return f"{what}: nothing to run, every stage is up to date."
    lines = [f"{what}: {sum(counts.values())} stages, about {duration(low)} to {duration(high)} "
             f"(times measured on {MACHINE}; other machines differ)"]
    for name in [*SECONDS, OTHER]:
        if counts.get(name):
            lo, hi = SECONDS.get(name, (None, None))
            each = "not timed one by one" if lo is None else f"{lo}-{hi} s each in the default regime"
            lines.append(f"  {counts[name]:3d} {name:18s} {each}")
    return "\n".join(lines)


def reading(params_by_stage: dict[str, list[str]], keys: tuple[str, ...]) -> set[str]:
    """The stages that read any of ``keys`` (a stage that reads a whole section reads its keys too)."""
    return {stage for stage, read in params_by_stage.items()
            if any(k == r or k.startswith(f"{r}.") for k in keys for r in read)}


def pipeline() -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """The pipeline's edges (stage, a stage it depends on) and each stage's params keys, from DVC."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo() as repo:
        edges = [(a.addressing, b.addressing) for a, b in repo.index.graph.edges]
        params = {stage.addressing: [key for dep in stage.deps if isinstance(dep, ParamsDependency)
                                     for key in dep.params] for stage in repo.index.stages}
    return edges, params


def main() -> None:
    from dvc.repo import Repo

    params = load_params()
    with Repo() as repo:
        changed = set(repo.status())
    edges, _ = pipeline()
    stages = to_run(changed, edges)
    counts, low, high = estimate(stages, params["examples_per_class"], params["epochs"])
    print(describe(counts, low, high, "dvc repro will run"), flush=True)


if __name__ == "__main__":
    main()
