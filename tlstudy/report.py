"""The study's figures and a self-contained report (Markdown, and HTML with the figures inlined)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from tlstudy.explore import save_figure  # noqa: E402
from tlstudy.fsutil import atomic_file  # noqa: E402
from tlstudy.stats import VERDICT_WORDS  # noqa: E402


@dataclass
class Run:
    model: str
    seed: int
    metrics: dict  # the evaluate stage's JSON
    curves: pd.DataFrame  # one row per epoch: step, loss, accuracy, val_loss, val_accuracy


def read_curves(live_dir: Path) -> pd.DataFrame:
    """Per-epoch train and validation curves from a dvclive directory written by DVCLiveCallback."""
    base = Path(live_dir) / "plots" / "metrics"
    columns = {}
    for split, prefix in (("train", ""), ("eval", "val_")):
        for metric in ("loss", "accuracy"):
            tsv = base / split / f"{metric}.tsv"
            if tsv.exists():
                frame = pd.read_csv(tsv, sep="\t")
                columns[f"{prefix}{metric}"] = frame.set_index("step")[metric]
    return pd.DataFrame(columns).reset_index()


def summarise(runs: list[Run]) -> dict:
    """Per model: test accuracy over seeds as mean, min, median, max; mean error count."""
    summary = {}
    for model in dict.fromkeys(r.model for r in runs):
        acc = np.array([r.metrics["accuracy"] for r in runs if r.model == model])
        errors = np.array([r.metrics["errors"] for r in runs if r.model == model])
        summary[model] = {
            "seeds": int(len(acc)),
            "accuracy_mean": float(acc.mean()),
            "accuracy_min": float(acc.min()),
            "accuracy_median": float(np.median(acc)),
            "accuracy_max": float(acc.max()),
            "errors_mean": float(errors.mean()),
        }
        raw = [r.metrics["raw"]["accuracy"] for r in runs if r.model == model and "raw" in r.metrics]
        if raw:  # before BatchNorm recalibration
            summary[model]["accuracy_raw_mean"] = float(np.mean(raw))
    return summary


def plot_curves(runs: list[Run], path: Path) -> None:
    """Training (solid) and validation (dashed) loss and accuracy per epoch; one column per model."""
    models = list(dict.fromkeys(r.model for r in runs))
    fig, axes = plt.subplots(2, len(models), figsize=(4.5 * len(models), 7), squeeze=False)
    for col, model in enumerate(models):
        for run in (r for r in runs if r.model == model):
            epochs = run.curves["step"] + 1
            for row, metric in enumerate(("loss", "accuracy")):
                ax = axes[row, col]
                color = f"C{run.seed % 10}"
                if metric in run.curves:
                    ax.plot(epochs, run.curves[metric], color=color, label=f"train, seed {run.seed}")
                if f"val_{metric}" in run.curves:  # scored every train.validation.every epochs: gaps between
                    scored = run.curves[f"val_{metric}"].notna()
                    ax.plot(epochs[scored], run.curves[f"val_{metric}"][scored], color=color, linestyle="--",
                            marker=".", label=f"validation, seed {run.seed}")
                ax.set_title(f"{model}: {metric}")
                ax.set_xlabel("epoch")
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_errors(runs: list[Run], path: Path) -> None:
    """Test error count per model: the mean as a bar, each seed as a dot."""
    models = list(dict.fromkeys(r.model for r in runs))
    fig, ax = plt.subplots(figsize=(1.8 * len(models) + 2, 4))
    for i, model in enumerate(models):
        errors = [r.metrics["errors"] for r in runs if r.model == model]
        ax.bar(i, np.mean(errors), color=f"C{i}", alpha=0.6)
        ax.scatter([i] * len(errors), errors, color="black", s=12, zorder=3)
        ax.annotate(f"{np.mean(errors):.0f}", (i, np.mean(errors)), ha="center", va="bottom")
    ax.set_xticks(range(len(models)), models)
    n = runs[0].metrics["n"]
    ax.set_ylabel(f"misclassified test images (of {n})")
    ax.set_title("Test errors per model (bar: mean over seeds; dots: seeds)")
    save_figure(fig, path)


def plot_forest(hypothesis: dict, path: Path) -> None:
    """Each comparison's delta (points) with its interval, the margin of practical equivalence shaded."""
    names = [name for name, c in hypothesis.items() if name != "regime"]
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.7 * len(names)))
    margin = 100 * max((hypothesis[n]["margin"] for n in names), default=0.0)
    ax.axvspan(-margin, margin, color="0.88", label=f"margin: no practical difference (±{margin:g} points)")
    ax.axvline(0, color="black", linewidth=0.8)
    for row, name in enumerate(reversed(names)):
        c = hypothesis[name]
        if c["ci_low"] is not None:
            ax.plot([100 * c["ci_low"], 100 * c["ci_high"]], [row, row], color="C0", linewidth=2.5)
        ax.plot(100 * c["delta"], row, "o", color="C0")
        ax.annotate(VERDICT_WORDS[c["verdict"]], (100 * c["delta"], row), xytext=(0, 7), textcoords="offset points",
                    ha="center", fontsize=8)
    ax.set_yticks(range(len(names)), [f"{n}\n{hypothesis[n]['a']} − {hypothesis[n]['b']}" for n in reversed(names)],
                  fontsize=8)
    ax.set_ylim(-0.6, len(names) - 0.3)
    ax.set_xlabel("difference in test accuracy, points (mean over seeds, 95% interval)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def plot_trained_per_class(split_summary: dict, path: Path) -> None:
    """The images each run actually trained on, per class (the seeds' subsets; one bar per seed)."""
    names = split_summary["class_names"]
    by_seed = split_summary["train_per_class_by_seed"]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) + 1.5))
    height = 0.8 / max(1, len(by_seed))
    for i, (seed, counts) in enumerate(by_seed.items()):
        ax.barh(np.arange(len(names)) + i * height, counts, height=height, label=f"seed {seed}")
    ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("training images")
    ax.set_title(f"Training images per class, as trained (pool: {split_summary['train']} images)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def results_table(summary: dict) -> list[list[str]]:
    header = ["model", "seeds", "test accuracy, mean", "min", "median", "max", "errors, mean",
              "mean before BatchNorm recalibration"]
    rows = [header]
    for model, s in summary.items():
        raw = f"{s['accuracy_raw_mean']:.4f}" if "accuracy_raw_mean" in s else "(no BatchNorm)"
        rows.append([model, str(s["seeds"]), f"{s['accuracy_mean']:.4f}", f"{s['accuracy_min']:.4f}",
                     f"{s['accuracy_median']:.4f}", f"{s['accuracy_max']:.4f}", f"{s['errors_mean']:.1f}", raw])
    return rows


def _markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(out_dir: Path, regime: dict, summary: dict, figures: dict[str, Path],
                 verdicts: list[str] = (), notes: list[str] = ()) -> tuple[Path, Path]:
    """``report.md`` (figures linked) and ``report.html`` (figures inlined, opens offline).

    The report opens with the verdicts, one sentence each, then the numbers, then the figures.
    """
    out_dir = Path(out_dir)
    rows = results_table(summary)
    regime_text = ", ".join(f"{k} = {v}" for k, v in regime.items())
    title = "Transfer-learning study: results"

    md = [f"# {title}", "", f"Regime: {regime_text}.", ""]
    md += [f"- {v}" for v in verdicts] + ([""] if verdicts else [])
    md += ["## Test accuracy over seeds", "", _markdown_table(rows), ""]
    md += [*notes, ""] if notes else []
    for caption, path in figures.items():
        # abspath, not resolve: with DVC's symlink cache a figure resolves into .dvc/cache
        rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir))).as_posix()
        md += [f"## {caption}", "", f"![{caption}]({rel})", ""]
    md_path = out_dir / "report.md"
    with atomic_file(md_path) as f:
        f.write("\n".join(md))

    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>Regime: {html.escape(regime_text)}.</p>"]
    if verdicts:
        parts.append("<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in verdicts) + "</ul>")
    parts += ["<h2>Test accuracy over seeds</h2>", _html_table(rows)]
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    for caption, path in figures.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts += [f"<h2>{html.escape(caption)}</h2>",
                  f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">']
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
             "img{max-width:100%}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
    html_path = out_dir / "report.html"
    with atomic_file(html_path) as f:
        f.write(page)
    return md_path, html_path


def sweep_grid(comparisons: pd.DataFrame) -> str:
    """The regimes a collected sweep compared (its comparisons.csv), in words: the sizes per class at
    each epoch budget, and the seeds per arm."""
    sizes: dict[int, list[str]] = {}
    for _, row in comparisons.sort_values("x", kind="stable").iterrows():
        found = sizes.setdefault(int(row["epochs"]), [])
        found += [str(row["examples_per_class"])] if str(row["examples_per_class"]) not in found else []
    seeds = sorted({int(n) for n in comparisons["seeds"]})
    seeds_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}"
    return ("; ".join(f"{_listed(n)} per class at {epochs} epochs" for epochs, n in sorted(sizes.items()))
            + f"; {seeds_text} seeds per arm")


def _listed(items: list[str]) -> str:
    """'10', '10 and 100', '10, 100 and 1,000'."""
    items = [f"{int(i):,}" if i.isdigit() else i for i in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def crossover_note(sweep: Path, task: str) -> tuple[str, Path | None]:
    """Where each strategy's advantage ends, from the sweep collected in ``sweep`` (its crossover.md and
    comparisons.csv), as one paragraph, and its figure; a sweep of another task is named as such, not read
    as this one's (and has no figure here)."""
    if not all((sweep / name).exists() for name in ("comparisons.csv", "crossover.md", "crossover.png")):
        return f"No sweep is collected in {sweep}/: `make sweep` measures where the advantage ends.", None
    comparisons = pd.read_csv(sweep / "comparisons.csv")
    tasks = sorted(set(comparisons["task"].dropna())) if "task" in comparisons else []
    if tasks and tasks != [task]:
        return (f"The sweep collected in {sweep}/ ran on {', '.join(tasks)}, not {task}: `make sweep` measures "
                "where the advantage ends on this task."), None
    sections = re.findall(r"\*\*(\w+)\*\*\n\n((?:- .*\n)+)", (sweep / "crossover.md").read_text())
    said = " ".join(f"{name}: " + " ".join(line[2:] for line in bullets.splitlines()) for name, bullets in sections)
    grid = sweep_grid(comparisons)
    return f"Where each advantage ends, from the sweep collected in {sweep}/ ({grid}). {said}", sweep / "crossover.png"


def environment_note(live_dir: Path, runs: list[Run]) -> str:
    """Where the runs ran (each run's dvclive params), and what that means for reproducing them."""
    runs_by_machine = {}
    for run in runs:
        env = run_params(live_dir, run).get("environment")
        if env:
            machine = (f"{env['cpu']} ({env['cpu_isa']}), GPUs: {env['gpus']}, TensorFlow {env['tensorflow']}, "
                       f"Keras {env['keras']}")
            runs_by_machine[machine] = runs_by_machine.get(machine, 0) + 1
    if not runs_by_machine:
        return "The machine the runs trained on was not recorded."
    several = len(runs_by_machine) > 1
    described = "; ".join(machine + (f" [{count} runs]" if several else "")
                          for machine, count in runs_by_machine.items())
    return (f"Trained on: {described}. Same params on the same machine type give bit-identical results; on "
            "another CPU family (other oneDNN kernels) a ResNet50 run moves, typically by a point or two and at "
            "times much more (as much as 8.9 points between an AVX2 and an AVX-512 machine), which is why the "
            "verdict rests on several seeds and an interval, never on one run.")


def run_params(live_dir: Path, run: Run) -> dict:
    """What a run recorded about itself (its dvclive params.yaml); empty if nothing was."""
    path = Path(live_dir) / f"{run.model}_s{run.seed}" / "params.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def choices_note(live_dir: Path, runs: list[Run]) -> str:
    """What each run chose on validation, per model in seed order: the epoch whose weights it kept (with
    train.keep: best) and its learning rate (with train.learning_rate_grid); empty where nothing was chosen."""
    parts = []
    for model in dict.fromkeys(r.model for r in runs):
        recorded = [run_params(live_dir, r) for r in runs if r.model == model]
        chosen = []
        if recorded[0].get("keep") == "best":
            chosen.append(f"epochs {', '.join(str(p['kept_epoch']) for p in recorded)} of {recorded[0]['epochs']}")
        if recorded[0].get("learning_rate_grid"):
            chosen.append(f"learning rates {', '.join(format(p['learning_rate_used'], 'g') for p in recorded)}")
        if chosen:
            parts.append(f"{model} kept {' at '.join(chosen)}")
    if not parts:
        return ""
    return ("Chosen on the validation budget, never the test split (train.keep, train.learning_rate_grid): "
            + "; ".join(parts) + ".")


def curve_rows(runs: list[Run], split: str) -> pd.DataFrame:
    """Every run's per-epoch loss and accuracy in one table (model, seed, epoch from 1), for DVC's
    top-level plots: ``train``, or ``validation`` (the epochs that were scored)."""
    prefix = "val_" if split == "validation" else ""
    frames = []
    for run in runs:
        columns = [c for c in (f"{prefix}loss", f"{prefix}accuracy") if c in run.curves]
        frame = run.curves[["step", *columns]].dropna(subset=columns, how="all")
        frames.append(pd.DataFrame({"model": run.model, "seed": run.seed, "epoch": frame["step"] + 1,
                                    **{c.removeprefix(prefix): frame[c] for c in columns}}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def verdict_rows(comparisons: dict) -> pd.DataFrame:
    """Each comparison's delta, interval and margin in points, and its verdict in words."""
    rows = []
    for name, c in comparisons.items():
        if name == "regime":
            continue
        margin = 100 * c["margin"]
        rows.append({"comparison": f"{name} ({c['a']} - {c['b']})", "delta": 100 * c["delta"],
                     "ci_low": None if c["ci_low"] is None else 100 * c["ci_low"],
                     "ci_high": None if c["ci_high"] is None else 100 * c["ci_high"],
                     "margin_low": -margin, "margin_high": margin, "verdict": VERDICT_WORDS[c["verdict"]]})
    return pd.DataFrame(rows)


def confusion_rows(predictions: dict[str, list[pd.DataFrame]]) -> pd.DataFrame:
    """Per model, summed over its seeds: how many test images of each true class got each predicted
    class, and that count as a share of the true class."""
    frames = []
    for model, frames_of_seeds in predictions.items():
        both = pd.concat(frames_of_seeds, ignore_index=True)
        counts = both.groupby(["actual", "predicted"]).size().rename("count").reset_index()
        counts["share"] = counts["count"] / counts.groupby("actual")["count"].transform("sum")
        frames.append(counts.assign(model=model)[["model", "actual", "predicted", "count", "share"]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_run(model: str, seed: int, metrics_path: Path, live_dir: Path) -> Run:
    return Run(model, seed, json.loads(Path(metrics_path).read_text()), read_curves(live_dir))
