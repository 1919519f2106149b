"""Stage report: the study's figures, the Markdown/HTML report, the mean accuracy per model
(``metrics/summary.json``) and its details (``metrics/models.json``), and the
tables behind DVC's top-level plots (``plots/study/``)."""

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from tlstudy import report, stats
from tlstudy.fsutil import atomic_file, write_json
from tlstudy.params import load_params, setup_logging, task_of

log = logging.getLogger("report")


def write_plot_tables(out: Path, runs: list[report.Run], comparisons: dict, predictions: Path) -> None:
    """The CSVs that dvc.yaml's top-level plots draw: a handful of charts for the whole study."""
    out.mkdir(parents=True, exist_ok=True)
    by_model = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(pd.read_csv(predictions / f"{run.model}_s{run.seed}.csv"))
    tables = {"train.csv": report.curve_rows(runs, "train"), "validation.csv": report.curve_rows(runs, "validation"),
              "verdicts.csv": report.verdict_rows(comparisons), "confusion.csv": report.confusion_rows(by_model)}
    for name, table in tables.items():
        with atomic_file(out / name) as f:
            table.to_csv(f, index=False)


def recipe_text(train: dict) -> str:
    """train.augment, weight_decay and keep in a few words, absent keys as off (the original study's)."""
    augment = train.get("augment") or {}
    changes = [*(["flips"] if augment.get("flip") else []),
               *([f"shifts up to {augment['translate']:g} of the side"] if augment.get("translate") else [])]
    decay = train.get("weight_decay") or 0
    return (f"{' and '.join(changes) or 'no augmentation'}, "
            f"{f'AdamW (weight decay {decay:g})' if decay else 'Adam'}, "
            f"{'the best validated epoch kept' if train.get('keep') == 'best' else 'the last epoch kept'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval-dir", required=True, help="directory of evaluate's <model>_s<seed>.json")
    parser.add_argument("--live-dir", required=True, help="directory of the dvclive runs <model>_s<seed>/")
    parser.add_argument("--eda", required=True, help="preprocess's exploratory figures")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--summary", required=True, help="JSON: mean test accuracy per model")
    parser.add_argument("--models", required=True, help="JSON: per model, accuracy over seeds in detail")
    parser.add_argument("--comparisons", required=True, help="the hypothesis stage's details")
    parser.add_argument("--split-summary", required=True, help="the split stage's summary.json")
    parser.add_argument("--predictions", required=True, help="evaluate's <model>_s<seed>.csv directory")
    parser.add_argument("--plots", required=True, help="directory for the top-level plots' tables")
    parser.add_argument("--sweep", required=True, help="the collected sweep (crossover.md, .png, comparisons.csv)")
    args = parser.parse_args()
    setup_logging()
    params = load_params()

    runs = [
        report.load_run(model, seed, Path(args.eval_dir) / f"{model}_s{seed}.json",
                        Path(args.live_dir) / f"{model}_s{seed}")
        for model in params["train"]["models"]
        for seed in params["train"]["seeds"]
    ]
    out = Path(args.out)
    hypothesis = json.loads(Path(args.comparisons).read_text())
    split_summary = json.loads(Path(args.split_summary).read_text())
    eda = Path(args.eda) / "figures"
    face_task = task_of(params) == "face_age"
    figures = {
        "Each comparison's difference with its 95% interval; shaded: the margin of practical equivalence":
            out / "forest.png",
        # Validation figures come from a fixed stratified subset of the validation split, every
        # train.validation.every epochs, with a ResNet's BatchNorm statistics recalibrated as evaluate does.
        "Training curves (solid) and validation curves (dashed: the validation budget, BatchNorm recalibrated)":
            out / "curves.png",
        "Test errors per model": out / "errors.png",
        "Training images per class, as trained": out / "trained_per_class.png",
        "Images per age group, whole dataset" if face_task else "Images per class, whole training pool":
            eda / "label_counts.png",
        "One image per age group" if face_task else "The first ten training images": eda / "samples.png",
    }
    if (eda / "ages.png").exists():
        figures["Ages, with the age groups' edges"] = eda / "ages.png"
    crossover, crossover_figure = report.crossover_note(Path(args.sweep), task_of(params))
    if crossover_figure:
        figures["Where each advantage ends as the training set grows (the collected sweep)"] = crossover_figure
    report.plot_forest(hypothesis, out / "forest.png")
    report.plot_curves(runs, out / "curves.png")
    report.plot_errors(runs, out / "errors.png")
    report.plot_trained_per_class(split_summary, out / "trained_per_class.png")
    summary = report.summarise(runs)
    write_json(Path(args.models), summary)
    write_json(Path(args.summary), {model: s["accuracy_mean"] for model, s in summary.items()})
    write_plot_tables(Path(args.plots), runs, hypothesis, Path(args.predictions))
    regime = {
        "task": task_of(params),
        "examples per class": params["examples_per_class"],
        "pretrained backbone": params["transfer"]["source"],
        "epochs": params["epochs"],
        "seeds": params["train"]["seeds"],
        "batch size": params["train"]["batch_size"],
        "learning rate": params["train"]["learning_rate"],
        "recipe": recipe_text(params["train"]),
        "split": split_summary["how"],
    }
    verdicts = [stats.sentence(name, result) for name, result in hypothesis.items() if name != "regime"]
    live = Path(args.live_dir)
    notes = [crossover, report.environment_note(live, runs), report.choices_note(live, runs),
             "McNemar's exact test per seed (metrics/comparisons.json, mcnemar_p_per_seed) says whether two "
             "trained networks differ on this test set; it is not evidence about the training procedures, and "
             "the verdicts above rest on the intervals alone."]
    md_path, html_path = report.write_report(out, regime, summary, figures, verdicts, [n for n in notes if n])
    for model, s in summary.items():
        log.info("%-18s test accuracy %.4f (min %.4f, max %.4f over %d seeds)", model, s["accuracy_mean"],
                 s["accuracy_min"], s["accuracy_max"], s["seeds"])
    print(f"Report: {html_path} (and {md_path})")


if __name__ == "__main__":
    main()
