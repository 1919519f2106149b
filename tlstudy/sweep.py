"""Sweeps over dataset size and epochs: queue a grid of DVC experiments, run it, collect it.

    python -m tlstudy.sweep run --examples 10,100,1000,all --epochs 3,10,30 [-S key=value ...]
    python -m tlstudy.sweep collect --out sweep

    # across machines: each worker runs its share and pushes it; one collects them all
    python -m tlstudy.sweep run --shard 2/3 --push origin --out sweep-2 ...
    python -m tlstudy.sweep collect --pull origin --failed 'sweep-*/failed.md' --out sweep

``run`` queues the cross product (or with ``--shard i/n`` every n-th regime of it, from the i-th),
each experiment named by its regime, with ``dvc exp run --queue``, records the queue's id of each
task in ``<out>/queued.json``, and runs the queue with ``dvc exp run --run-all``; a failing
experiment does not stop the others. With ``--push`` each
finished experiment goes to that git remote with ``dvc exp push`` (its outputs to the default DVC
remote), and the shard's failures stay in its ``failed.md``. ``collect --pull`` first pulls every
experiment of the current commit from the git remote, and ``--failed`` adds other shards' failures.

``collect`` reads every experiment of the current commit from ``dvc exp show --json``, and each one's details
(``metrics/models.json``, ``metrics/comparisons.json``) from its commit, and writes, under ``--out``: the
data-efficiency plot (test accuracy against examples per class, one line per model, spread over
seeds), each strategy's delta with its interval against examples per class for each epoch budget, a
Markdown table marking where the verdict changes, where each strategy's advantage ends (the crossover),
CSVs of the same numbers, and ``failed.md`` with
each failed experiment's name and the end of its log. The failures are this sweep's own: the tasks
that ``run`` recorded in ``queued.json``, matched by task id (a regime's name is the same on every
run, and ``dvc queue status`` keeps a failed task until it is removed, so a regime that failed once
and then succeeded would otherwise count as failed); with no record, those ``dvc exp show`` marks
as failed. A failure never hides a successful experiment: each experiment counts by its own state.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tlstudy.dvccli import dvc  # noqa: E402
from tlstudy.explore import save_figure  # noqa: E402
from tlstudy.fsutil import atomic_file, write_json  # noqa: E402
from tlstudy.params import setup_logging  # noqa: E402
from tlstudy.readme import POWER_GOALS, POWER_HEADER, exp_show_columns, power_cell, power_seeds  # noqa: E402
from tlstudy.stats import VERDICT_WORDS  # noqa: E402

log = logging.getLogger(__name__)
# The two knobs every table shows; any other param that differs between collected experiments joins them.
KNOBS = ("epochs", "examples_per_class")
# A param that chooses which models train, not how any run trains: a regime that trains fewer models (a
# sweep without the MLP and the CNN) is the same regime for those it trains. A comparison it drops counts
# as defined by the others (the rule for a param one experiment lacks); one defined otherwise is a regime.
SELECTION = ("train.models",)
# Each experiment's details, read from its commit (`dvc exp show` carries only the declared metrics).
MODELS, COMPARISONS = "metrics/models.json", "metrics/comparisons.json"
# Under --out: the queue's task id of each experiment `run` queued, id -> name.
QUEUED = "queued.json"
# Executor states of an experiment that has not finished: `dvc exp show` gives it the commit's metrics.
UNFINISHED = ("queued", "running")
STRATEGIES = ("transfer", "init_only", "linear_probe")  # the ways of using the pretrained weights


@dataclass
class Experiment:
    name: str
    rev: str
    params: dict
    metrics: dict  # metrics file path -> its content
    failed: bool
    task: str = ""  # the queue's task id (its stash commit), where DVC ran it from the queue


def regimes(examples: list[str], epochs: list[str], shard: str = "1/1") -> list[tuple[str, str]]:
    """The grid's (examples per class, epochs) pairs in a fixed order, or shard ``i/n``'s share: every
    n-th pair from the i-th, so that n workers together run each pair exactly once."""
    try:
        i, n = (int(part) for part in shard.split("/"))
    except ValueError:
        i = n = 0
    if not 1 <= i <= n:
        raise SystemExit(f"--shard must be i/n with 1 <= i <= n, e.g. 2/3; got {shard!r}")
    grid = [(e, n_epochs) for n_epochs in epochs for e in examples]
    return grid[i - 1::n]


def regime_name(examples: str, epochs: str) -> str:
    """The experiment's name: the same regime has the same name on every machine."""
    return f"n{examples}-e{epochs}"


def queue_grid(pairs: list[tuple[str, str]], extra: list[str] = ()) -> dict[str, str]:
    """Queue each regime; return the queue's task id of each: id -> name (the tasks new in the queue)."""
    before = set(queue_status())
    names = []
    for examples, epochs in pairs:
        name = regime_name(examples, epochs)
        args = ["exp", "run", "--queue", "-n", name, "-S", f"examples_per_class={examples}", "-S", f"epochs={epochs}"]
        for override in extra:
            args += ["-S", override]
        print(dvc(*args).stdout, end="")
        names.append(name)
    new = {name: task for task, (name, _) in queue_status().items() if task not in before}
    if sorted(new) != sorted(names):
        raise SystemExit(f"queued {', '.join(names)}, but `dvc queue status` shows {', '.join(new) or 'none'} as "
                         "new tasks: run the sweep again once nothing else is queueing experiments here")
    return {new[name]: name for name in names}


def push_experiments(names: list[str], git_remote: str) -> list[str]:
    """``dvc exp push`` each experiment that finished; returns the names pushed."""
    done = {e.name for e in parse_exp_show(json.loads(dvc("exp", "show", "--json").stdout)) if not e.failed}
    pushed = []
    for name in names:
        if name in done:
            dvc("exp", "push", git_remote, name)
            pushed.append(name)
    log.info("pushed %d experiments to %s: %s", len(pushed), git_remote, ", ".join(pushed) or "none")
    return pushed


def confirm_cost(pairs: list[tuple[str, str]], confirm_hours: float, yes: bool, ask=None, pipeline=None) -> None:
    """Say how many runs the grid holds and about how long they take (tlstudy/plan.py's table: the
    stages that read a knob, and every stage after them, run again in each experiment); past
    ``confirm_hours``, go on only on ``--yes`` or a yes to ``ask`` (``input`` at a terminal, else None:
    nobody to ask). ``pipeline``: (edges, params by stage), by default the repository's."""
    from tlstudy import plan

    edges, params = pipeline or plan.pipeline()
    stages = plan.to_run(plan.reading(params, KNOBS), edges)
    low, high = sweep_cost(pairs, stages)
    print(f"The sweep: {len(pairs)} runs of {len(stages)} stages each, about {plan.duration(low)} to "
          f"{plan.duration(high)} one after another (times measured on {plan.MACHINE}; other machines differ)",
          flush=True)
    if yes or high <= confirm_hours * 3600:
        return
    if ask is None:
        raise SystemExit(f"The sweep may take more than {confirm_hours:g} h: pass --yes (make sweep YES=1) to run it "
                         "without asking, or fewer --examples/--epochs values.")
    if ask("Go on? [y/N] ").strip().lower() not in ("y", "yes"):
        raise SystemExit("Sweep not started.")


def sweep_cost(pairs: list[tuple[str, str]], stages: set[str]) -> tuple[float, float]:
    """(low, high) seconds for ``stages`` once per (examples, epochs) pair."""
    from tlstudy import plan

    costs = [plan.estimate(stages, examples, epochs)[1:] for examples, epochs in pairs]
    return sum(low for low, _ in costs), sum(high for _, high in costs)


def run_queue(jobs: int = 1) -> int:
    """Run every queued experiment; the return code is non-zero if any failed, the others still run."""
    return dvc("exp", "run", "--run-all", "-j", str(jobs), check=False, stdout=False, stderr=False).returncode


def parse_exp_show(exp_show: list) -> list[Experiment]:
    """The experiments in ``dvc exp show --json``: baselines hold ranges, each with an executor state
    (``failed`` for a failed run) and its revisions, the first being the experiment's result. One still
    queued or running is left out: until it ends, its revision carries the commit's metrics."""
    experiments = []
    for baseline in exp_show:
        # The commit itself is a regime too (the workspace is not: it may be half-run).
        data = baseline.get("data") or {}
        has_metrics = any((value or {}).get("data") for value in (data.get("metrics") or {}).values())
        if baseline.get("rev") != "workspace" and has_metrics:
            exp_range = {"name": baseline.get("name") or baseline["rev"][:7], "revs": [baseline]}
            baseline = {**baseline, "experiments": [exp_range, *(baseline.get("experiments") or [])]}
        for exp_range in baseline.get("experiments") or []:
            executor = exp_range.get("executor") or {}
            if executor.get("state") in UNFINISHED:  # its revision holds the commit's results, not its own yet
                log.info("experiment %s is %s: not collected", exp_range.get("name"), executor["state"])
                continue
            failed = executor.get("state") == "failed"
            revs = exp_range.get("revs") or [{}]
            state = revs[0]
            data = state.get("data") or {}
            params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
            metrics = {path: value.get("data") or {} for path, value in (data.get("metrics") or {}).items()}
            name = exp_range.get("name") or state.get("name") or state.get("rev", "?")
            task = (executor.get("local") or {}).get("task_id") or ""
            experiments.append(Experiment(name, state.get("rev", ""), params, metrics,
                                          failed or bool(state.get("error")), task))
    return experiments


def queue_status() -> dict[str, tuple[str, str]]:
    """Every task in ``dvc queue status``: its id (the first 7 digits of its stash commit) -> (name,
    status). The name is the second column: a sweep's names have no spaces."""
    tasks = {}
    for line in dvc("queue", "status", check=False).stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[-1] in ("Queued", "Running", "Success", "Failed") and fields[0] != "Task":
            tasks[fields[0]] = (fields[1], fields[-1])
    return tasks


def failed_tasks(experiments: list[Experiment], tasks: dict[str, str] | None) -> dict[str, str]:
    """The sweep's failures: task id -> name. With ``tasks`` (what ``run`` queued: id -> name), those of
    them that ``dvc exp show`` or ``dvc queue status`` marks as failed; without, every experiment that
    ``dvc exp show`` marks as failed (a failed queued run's rev is its task's stash commit)."""
    shown = {(e.task or e.rev)[:7]: e.name for e in experiments if e.failed and (e.task or e.rev)}
    if tasks is None:
        return shown
    queue = {task: name for task, (name, status) in queue_status().items() if status == "Failed"}
    return {task: name for task, name in tasks.items() if task in shown or task in queue}


def flatten(params: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become strings, so that they compare and print."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value) if isinstance(value, (list, tuple)) else value
    return flat


def load_details(experiments: list[Experiment]) -> None:
    """Add each experiment's detail files from its commit (an experiment is a git commit)."""
    for exp in experiments:
        for path in (MODELS, COMPARISONS):
            if exp.failed or path in exp.metrics or not exp.rev:
                continue
            shown = subprocess.run(["git", "show", f"{exp.rev}:{path}"], capture_output=True, text=True)
            if shown.returncode == 0:
                exp.metrics[path] = json.loads(shown.stdout)


def tables(experiments: list[Experiment]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (experiment, model) accuracies, and per (experiment, comparison) deltas and verdicts.

    A regime is every param: two experiments that differ in any param (a learning rate, a seed list,
    the pretraining source) are two regimes; the params that differ besides the two knobs are named
    in the ``regime`` column, except the choice of models to train (``SELECTION``). A
    param that an older commit did not have yet (``train.deterministic``)
    counts, for its experiments, at the one value every other experiment gives it: the project adds a
    param with the default that keeps earlier results (and checks that dvc.lock still holds)."""
    done = [e for e in experiments if not e.failed and MODELS in e.metrics]
    flat = [{k: v for k, v in flatten(e.params).items() if not k.startswith(SELECTION)} for e in done]
    for key in {k for f in flat for k in f}:
        values = {str(f[key]): f[key] for f in flat if key in f}
        if len(values) == 1:
            for f in flat:
                f.setdefault(key, next(iter(values.values())))
    keys = sorted({k for f in flat for k in f})
    varying = [k for k in keys if k not in KNOBS and len({str(f.get(k)) for f in flat}) > 1]
    accuracy, comparisons = [], []
    for exp, params in zip(done, flat):
        hypothesis = exp.metrics.get(COMPARISONS, {})
        trained = (hypothesis.get("regime") or {}).get("trained_per_class")
        regime = {"experiment": exp.name, "task": (hypothesis.get("regime") or {}).get("task"),
                  "epochs": params.get("epochs"),
                  "examples_per_class": params.get("examples_per_class"),
                  "regime": ", ".join(f"{k}={params.get(k)}" for k in varying),
                  "key": repr(sorted((k, str(v)) for k, v in params.items())),
                  "x": trained if trained is not None else _number(params.get("examples_per_class"))}
        for model, s in exp.metrics[MODELS].items():
            accuracy.append({**regime, "model": model, **s})
        for name, c in hypothesis.items():
            if name == "regime":
                continue
            raw = c.get("raw", {})
            comparisons.append({**regime, "comparison": name, "verdict": c["verdict"], "delta": c["delta"],
                                "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high"),
                                "margin": c.get("margin"), "seeds": c.get("seeds"),
                                "seeds_needed": c.get("seeds_needed"),
                                **{f"power_{goal}": n for goal, n in zip(POWER_GOALS, power_seeds(c))},
                                "raw_delta": raw.get("delta"), "raw_verdict": raw.get("verdict")})
    return (_by_regime(_one_per_regime(pd.DataFrame(accuracy), "model")),
            _by_regime(_one_per_regime(pd.DataFrame(comparisons), "comparison")))


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _one_per_regime(frame: pd.DataFrame, item: str) -> pd.DataFrame:
    """One experiment per regime: with several commits collected, the same regime can appear twice
    (a commit's own results and an experiment of another); the first collected stays."""
    if not len(frame):
        return frame
    duplicated = frame.duplicated(subset=["key", item])
    for name in frame.loc[duplicated, "experiment"].unique():
        log.info("%s repeats a regime already collected; left out", name)
    return frame[~duplicated].drop(columns="key")


def _by_regime(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted by the other params, epochs, then training images per class ('all' at its real count)."""
    if not len(frame):
        return frame
    return frame.sort_values(["regime", "epochs", "x"], ignore_index=True)


def plot_data_efficiency(accuracy: pd.DataFrame, path: Path) -> None:
    budgets = sorted(accuracy["epochs"].unique())
    fig, axes = plt.subplots(1, len(budgets), figsize=(5 * len(budgets), 4), squeeze=False, sharey=True)
    for ax, epochs in zip(axes[0], budgets):
        for i, (model, rows) in enumerate(accuracy[accuracy["epochs"] == epochs].groupby("model", sort=False)):
            spread = [rows["accuracy_mean"] - rows["accuracy_min"], rows["accuracy_max"] - rows["accuracy_mean"]]
            ax.errorbar(rows["x"], rows["accuracy_mean"], yerr=spread, marker="o", capsize=3, label=model,
                        color=f"C{i}")
        ax.set_xscale("log")
        ax.set_title(f"{epochs} epochs")
        ax.set_xlabel("training images per class ('all': the dataset's own count)")
    axes[0, 0].set_ylabel("test accuracy (mean; bars: min to max over seeds)")
    axes[0, 0].legend(fontsize=8)
    save_figure(fig, path)


def plot_delta(comparisons: pd.DataFrame, path: Path, comparison: str = "transfer") -> None:
    """The comparison's delta with its interval against training images per class, a line per epoch
    budget (and per other regime), the margin of practical equivalence shaded."""
    rows = comparisons[comparisons["comparison"] == comparison]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    margin = 100 * float(rows["margin"].max()) if rows["margin"].notna().any() else 0.0
    ax.axhspan(-margin, margin, color="0.88", label=f"no practical difference (±{margin:g} points)")
    for i, ((regime, epochs), group) in enumerate(rows.groupby(["regime", "epochs"], sort=False)):
        low = group["ci_low"].astype(float).fillna(group["delta"])
        high = group["ci_high"].astype(float).fillna(group["delta"])
        error = 100 * np.array([group["delta"] - low, high - group["delta"]])
        label = f"{epochs} epochs" + (f", {regime}" if regime else "")
        ax.errorbar(group["x"] * (1 + 0.04 * i), 100 * group["delta"], yerr=error, marker="o", capsize=3,
                    label=label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training images per class")
    a_minus_b = {"transfer": "tl - scratch", "init_only": "ft - scratch"}.get(comparison, comparison)
    ax.set_ylabel(f"accuracy({a_minus_b}), points")
    ax.set_title(f"{comparison}: difference with its 95% interval")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def _interval(r) -> str:
    if pd.isna(r["ci_low"]):
        return "n/a (one seed)"
    return f"[{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}]"


def verdict_table(comparisons: pd.DataFrame, comparison: str = "transfer") -> str:
    """Markdown: one row per regime; a mark where the verdict differs from the next smaller dataset."""
    rows = comparisons[comparisons["comparison"] == comparison]
    other = rows["regime"].astype(bool).any()
    lines = ["| " + ("regime | " if other else "") + "epochs | examples per class | verdict | delta (points) | "
             f"95% interval | seeds | {POWER_HEADER} | raw verdict |",
             "|---" * (9 if other else 8) + "|"]
    for _, group in rows.groupby(["regime", "epochs"], sort=False):
        previous = None
        for _, r in group.iterrows():
            mark = " (changes)" if previous is not None and r["verdict"] != previous else ""
            raw = VERDICT_WORDS[int(r["raw_verdict"])] if pd.notna(r["raw_verdict"]) else "-"
            power = power_cell(int(r["verdict"]), *(r.get(f"power_{goal}", float("nan")) for goal in POWER_GOALS))
            lines.append(("| " + r["regime"] + " " if other else "") +
                         f"| {r['epochs']} | {r['examples_per_class']} | **{VERDICT_WORDS[int(r['verdict'])]}**{mark} "
                         f"| {100 * r['delta']:+.1f} | {_interval(r)} | {int(r['seeds'])} | {power} | {raw} |")
            previous = r["verdict"]
    return "\n".join(lines) + "\n"


def accuracy_table(accuracy: pd.DataFrame) -> str:
    """Markdown: one row per regime, a column per model, its mean test accuracy over seeds (min-max), in %."""
    models = list(dict.fromkeys(accuracy["model"]))
    other = accuracy["regime"].astype(bool).any()
    lines = ["| " + ("regime | " if other else "") + "epochs | examples per class | " + " | ".join(models) + " |",
             "|---" * (len(models) + (3 if other else 2)) + "|"]
    # dropna=False: an older commit's 'all' has no trained count (x is NaN), and its rows must stay
    for (regime, epochs, _, _), group in accuracy.groupby(["regime", "epochs", "examples_per_class", "x"],
                                                           sort=False, dropna=False):
        by_model = {r["model"]: f"{100 * r['accuracy_mean']:.1f} ({100 * r['accuracy_min']:.1f}-"
                                f"{100 * r['accuracy_max']:.1f})" for _, r in group.iterrows()}
        lines.append(("| " + regime + " " if other else "") + f"| {epochs} | {group['examples_per_class'].iloc[0]} | "
                     + " | ".join(by_model.get(m, "-") for m in models) + " |")
    return "\n".join(lines) + "\n"


def _crossing(sizes: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """Where ``values`` first falls from above ``level`` to at or below it, linear in log10(size)
    between the two sizes measured either side; None if it never does within the sizes measured."""
    for (n0, v0), (n1, v1) in zip(zip(sizes, values), zip(sizes[1:], values[1:])):
        if v0 > level >= v1:
            x0, x1 = np.log10(n0), np.log10(n1)
            return float(10 ** (x0 + (v0 - level) / (v0 - v1) * (x1 - x0)))
    return None


def crossover(comparisons: pd.DataFrame, comparison: str = "transfer") -> pd.DataFrame:
    """Per epoch budget (and other regime), where the advantage of ``comparison`` ends as the training
    set grows, read off the measured sizes ('all' counted by its mean images per class):

    ``shown_until``: the size at which the interval's lower bound reaches zero (below it, the advantage
    is shown); ``below_margin_from``: the size at which its upper bound falls to the margin (past it,
    any advantage is smaller than the margin). The crossover lies between the two; their distance is
    the uncertainty that the seeds and the test images leave. Both are interpolated in log size between
    neighbouring measured sizes, so they are only as fine as the grid; None: no crossing inside it."""
    rows = comparisons[(comparisons["comparison"] == comparison) & comparisons["ci_low"].notna()]
    result = []
    for (regime, epochs), group in rows.groupby(["regime", "epochs"], sort=False):
        group = group.sort_values("x")
        sizes = group["x"].to_numpy(float)
        low, high = group["ci_low"].to_numpy(float), group["ci_high"].to_numpy(float)
        margin = float(group["margin"].max())
        result.append({"regime": regime, "epochs": epochs, "smallest": sizes[0], "largest": sizes[-1],
                       "shown_at_smallest": bool(low[0] > 0), "shown_until": _crossing(sizes, low, 0.0),
                       "below_margin_from": _crossing(sizes, high, margin),
                       "below_margin_at_largest": bool(high[-1] <= margin), "margin": margin})
    return pd.DataFrame(result)


def _found(size) -> bool:
    """A crossing that lies inside the grid (None or NaN where it does not)."""
    return size is not None and bool(pd.notna(size))


def crossover_sentence(row: dict | pd.Series) -> str:
    """One sentence per epoch budget: where the advantage is shown, and where it is below the margin."""
    size = lambda n: f"{n:,.0f}"  # noqa: E731
    head = f"At {row['epochs']} epochs" + (f" ({row['regime']})" if row["regime"] else "")
    margin = f"{100 * row['margin']:g}-point margin"
    if row["smallest"] == row["largest"]:  # one size: nothing to read a crossing from
        there = ("the advantage is shown there; where it ends needs a larger size" if row["shown_at_smallest"]
                 else f"the advantage is below the {margin} there" if row["below_margin_at_largest"]
                 else "the advantage is neither shown nor below the margin there")
        return f"{head}, only {size(row['smallest'])} images per class is measured: {there}."
    if not row["shown_at_smallest"]:
        shown = f"the advantage is not shown even at {size(row['smallest'])} images per class"
    elif not _found(row["shown_until"]):
        shown = f"the advantage is shown at every size measured, up to {size(row['largest'])} images per class"
    else:
        shown = f"the advantage is shown up to about {size(row['shown_until'])} images per class"
    if _found(row["below_margin_from"]):
        gone = f"from about {size(row['below_margin_from'])} it is below the {margin}"
    elif row["below_margin_at_largest"]:
        gone = f"it is below the {margin} at every size measured"
    else:
        gone = f"it is not shown below the {margin} up to {size(row['largest'])}"
    return f"{head}, {shown}; {gone}."


def plot_crossover(table: pd.DataFrame, path: Path) -> None:
    """Per comparison and epoch budget, the span of training-set sizes where the advantage ends: from where it
    stops being shown to where it is below the margin (arrows: past the grid's end)."""
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.5 * len(table)))
    for i, row in enumerate(table.itertuples()):
        start = row.shown_until if _found(row.shown_until) else row.smallest
        end = row.below_margin_from if _found(row.below_margin_from) else row.largest
        ax.plot([start, end], [i, i], linewidth=6, solid_capstyle="butt", color=f"C{i % 10}")
        if not _found(row.below_margin_from) and not row.below_margin_at_largest:
            ax.annotate("", (end * 1.6, i), (end, i), arrowprops={"arrowstyle": "->"})
    ax.set_yticks(range(len(table)), [f"{r.comparison}, {r.epochs} epochs" + (f", {r.regime}" if r.regime else "")
                                      for r in table.itertuples()])
    ax.invert_yaxis()  # in the order of crossover.md
    ax.set_xscale("log")
    ax.set_xlabel("training images per class")
    ax.set_xlim(right=max(table["largest"]) * 2)  # room for the arrows
    ax.set_title("Where each advantage ends (left: last shown; right: below the margin)", fontsize=9)
    save_figure(fig, path)


def failed_elsewhere(reports: list[Path]) -> dict[str, str]:
    """Failed experiments listed in other shards' ``failed.md``: name -> the section with its log."""
    failed = {}
    for report in reports:
        for section in report.read_text().split("\n## ")[1:]:
            name, _, body = section.partition("\n")
            failed[name.strip()] = body.strip()
    return failed


def collect(out: Path, exp_show: list | None = None, revs: list[str] = (), failed_reports: list[Path] = ()) -> dict:
    """Write the sweep's figures and tables under ``out``; return counts of what was collected.
    ``revs``: the commits whose experiments to collect (default: the current one);
    ``failed_reports``: other shards' ``failed.md``, whose failures join this one's.
    This sweep's tasks are those ``run`` recorded in ``out/queued.json``, if it is there."""
    if exp_show is None:
        exp_show = json.loads(dvc("exp", "show", "--json", *(a for rev in revs for a in ("--rev", rev))).stdout)
    experiments = parse_exp_show(exp_show)
    load_details(experiments)
    out.mkdir(parents=True, exist_ok=True)
    tasks = json.loads((out / QUEUED).read_text()) if (out / QUEUED).exists() else None
    own = failed_tasks(experiments, tasks)
    elsewhere = failed_elsewhere(list(failed_reports))
    failed = sorted(set(own.values()) | set(elsewhere))
    with atomic_file(out / "failed.md") as f:
        f.write("# Failed experiments\n\n" + ("none\n" if not failed else ""))
        for task, name in sorted(own.items(), key=lambda item: item[1]):
            logs = dvc("queue", "logs", task, check=False)
            f.write(f"## {name}\n\n```\n{(logs.stdout + logs.stderr)[-3000:]}\n```\n\n")
        for name, section in sorted(elsewhere.items()):
            f.write(f"## {name}\n\n{section}\n\n")
        for name in failed:
            log.warning("experiment %s failed; its log is in %s", name, out / "failed.md")
    accuracy, comparisons = tables(experiments)
    if len(accuracy):
        accuracy.to_csv(out / "accuracy.csv", index=False)
        with atomic_file(out / "accuracy.md") as f:
            f.write(accuracy_table(accuracy))
        plot_data_efficiency(accuracy, out / "data_efficiency.png")
    if len(comparisons):
        comparisons.to_csv(out / "comparisons.csv", index=False)
        with atomic_file(out / "table.md") as f:
            for name in comparisons["comparison"].unique():
                f.write(f"## {name}\n\n{verdict_table(comparisons, name)}\n")
        for name in STRATEGIES:
            if (comparisons["comparison"] == name).any():
                plot_delta(comparisons, out / ("delta.png" if name == "transfer" else f"delta_{name}.png"), name)
        write_crossover(comparisons, out)
    collected = int(accuracy["experiment"].nunique()) if len(accuracy) else 0
    return {"experiments": collected, "failed": failed}


def write_crossover(comparisons: pd.DataFrame, out: Path) -> None:
    """``crossover.md`` (per strategy, a sentence per epoch budget) and ``crossover.png``, for the research
    question."""
    tables = [crossover(comparisons, name).assign(comparison=name) for name in STRATEGIES]
    tables = [table for table in tables if len(table)]
    if not tables:
        return
    with atomic_file(out / "crossover.md") as f:
        for table in tables:
            f.write(f"**{table['comparison'].iloc[0]}**\n\n"
                    + "".join(f"- {crossover_sentence(row)}\n" for _, row in table.iterrows()) + "\n")
    plot_crossover(pd.concat(tables, ignore_index=True), out / "crossover.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="queue the grid, run it, then collect")
    run.add_argument("--examples", default="10,100,1000,all", help="examples_per_class values")
    run.add_argument("--epochs", default="3,10,30", help="epochs values")
    run.add_argument("-S", "--set", action="append", default=[], help="more overrides for every experiment")
    run.add_argument("--jobs", type=int, default=1, help="experiments at a time (each uses every core)")
    run.add_argument("--shard", default="1/1", help="i/n: run only this worker's share of the grid")
    run.add_argument("--push", metavar="GIT_REMOTE", help="dvc exp push each finished experiment there")
    run.add_argument("--out", default="sweep")
    run.add_argument("--yes", action="store_true", help="run without asking, whatever the estimated time")
    run.add_argument("--confirm-hours", type=float, default=2.0,
                     help="past this estimated time, ask before starting (default: 2)")
    redraw = commands.add_parser("crossover", help="where the transfer advantage ends, from out/comparisons.csv")
    redraw.add_argument("--out", default="sweep")
    collect_parser = commands.add_parser("collect", help="collect the experiments of the current commit")
    collect_parser.add_argument("--out", default="sweep")
    collect_parser.add_argument("--rev", action="append", default=[],
                                help="collect the experiments of this commit (repeatable); default: the current one")
    collect_parser.add_argument("--pull", metavar="GIT_REMOTE",
                                help="dvc exp pull every experiment of the current commit from there first")
    collect_parser.add_argument("--failed", action="append", default=[], metavar="FILE",
                                help="another shard's failed.md (repeatable; a glob pattern is expanded)")
    args = parser.parse_args()
    setup_logging()
    if args.command == "crossover":
        comparisons = pd.read_csv(Path(args.out) / "comparisons.csv", dtype={"regime": object}).fillna({"regime": ""})
        write_crossover(comparisons, Path(args.out))
        print((Path(args.out) / "crossover.md").read_text(), end="")
        return
    if args.command == "run":
        pairs = regimes(args.examples.split(","), args.epochs.split(","), args.shard)
        confirm_cost(pairs, args.confirm_hours, args.yes, ask=input if sys.stdin.isatty() else None)
        tasks = queue_grid(pairs, args.set)
        write_json(Path(args.out) / QUEUED, tasks)
        run_queue(args.jobs)
        if args.push:
            push_experiments(list(tasks.values()), args.push)
    elif args.pull:
        dvc("exp", "pull", args.pull)  # every experiment of the current commit, outputs from the DVC remote
    reports = sorted({Path(path) for pattern in getattr(args, "failed", []) for path in glob.glob(pattern)})
    result = collect(Path(args.out), revs=getattr(args, "rev", []), failed_reports=reports)
    print(dvc("exp", "show", "--no-pager", *exp_show_columns(), check=False).stdout, end="")
    print(f"{result['experiments']} experiments collected into {args.out}/; failed: {result['failed'] or 'none'}")
    print("Verdicts per regime again: make results")


if __name__ == "__main__":
    main()
