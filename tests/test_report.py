import base64

import matplotlib.axes
import pandas as pd
import pytest
import yaml

from tlstudy.report import (
    Run,
    choices_note,
    confusion_rows,
    curve_rows,
    environment_note,
    plot_curves,
    plot_errors,
    read_curves,
    summarise,
    verdict_rows,
    write_report,
)


def make_runs():
    curves = pd.DataFrame({"step": [0, 1], "loss": [1.0, 0.5], "accuracy": [0.5, 0.8],
                           "val_loss": [1.1, 0.7], "val_accuracy": [0.4, 0.7]})
    runs = []
    for model, accs in {"mlp": [0.80, 0.84, 0.82], "cnn": [0.90, 0.86, 0.88]}.items():
        for seed, acc in enumerate(accs):
            runs.append(Run(model, seed, {"accuracy": acc, "errors": round((1 - acc) * 100), "n": 100}, curves))
    return runs


def test_summarise_known_answer():
    s = summarise(make_runs())
    assert list(s) == ["mlp", "cnn"]
    assert s["mlp"]["accuracy_mean"] == pytest.approx(0.82)
    assert (s["cnn"]["accuracy_min"], s["cnn"]["accuracy_median"], s["cnn"]["accuracy_max"]) == (0.86, 0.88, 0.90)
    assert s["cnn"]["errors_mean"] == pytest.approx(12.0)
    assert s["mlp"]["seeds"] == 3
    assert "accuracy_raw_mean" not in s["mlp"]


def test_summarise_keeps_accuracy_before_recalibration():
    runs = make_runs()
    for run, raw in zip(runs[3:], (0.1, 0.2, 0.3)):
        run.metrics["raw"] = {"accuracy": raw}
    assert summarise(runs)["cnn"]["accuracy_raw_mean"] == pytest.approx(0.2)


def test_read_curves_from_dvclive_layout(tmp_path):
    for split in ("train", "eval"):
        (tmp_path / "plots/metrics" / split).mkdir(parents=True)
        for metric, values in (("loss", [2.0, 1.0]), ("accuracy", [0.3, 0.6])):
            pd.DataFrame({"step": [0, 1], metric: values}).to_csv(
                tmp_path / "plots/metrics" / split / f"{metric}.tsv", sep="\t", index=False)
    curves = read_curves(tmp_path)
    assert list(curves.columns) == ["step", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert curves["val_accuracy"].tolist() == [0.3, 0.6]


def test_report_embeds_figures_and_table(tmp_path):
    runs = make_runs()
    figures = {"Curves": tmp_path / "out/curves.png", "Errors": tmp_path / "out/errors.png"}
    plot_curves(runs, figures["Curves"])
    plot_errors(runs, figures["Errors"])
    md, html = write_report(tmp_path / "out", {"epochs": 10}, summarise(runs), figures,
                            verdicts=["transfer: supported & more"])
    text = html.read_text()
    png = base64.b64encode(figures["Errors"].read_bytes()).decode()
    assert png in text and "src=\"http" not in text
    assert "<td>cnn</td><td>3</td><td>0.8800</td>" in text
    markdown = md.read_text()
    assert "| mlp | 3 | 0.8200 | 0.8000 | 0.8200 | 0.8400 | 18.0 | (no BatchNorm) |" in markdown
    assert "![Curves](curves.png)" in markdown
    assert markdown.index("- transfer: supported & more") < markdown.index("## Test accuracy")
    assert "<li>transfer: supported &amp; more</li>" in text


def test_environment_note_names_the_machine_and_tells_apart_mixed_ones(tmp_path):
    runs = make_runs()[:2]
    env = {"cpu": "Xeon X", "cpu_isa": "avx2 avx512f", "gpus": "none", "tensorflow": "2.21.0", "keras": "3.15.1"}
    for run, cpu in zip(runs, ("Xeon X", "EPYC Y")):
        folder = tmp_path / f"{run.model}_s{run.seed}"
        folder.mkdir()
        (folder / "params.yaml").write_text(yaml.safe_dump({"seed": run.seed, "environment": {**env, "cpu": cpu}}))
    note = environment_note(tmp_path, runs)
    assert note.startswith("Trained on: Xeon X (avx2 avx512f), GPUs: none, TensorFlow 2.21.0, Keras 3.15.1 [1 runs]; "
                           "EPYC Y")
    assert environment_note(tmp_path / "missing", runs) == "The machine the runs trained on was not recorded."


def test_validation_points_every_other_epoch_are_drawn(tmp_path, monkeypatch):
    """Validation scored at steps 1 and 3 only: the dashed line carries exactly those points, no NaN gap."""
    curves = pd.DataFrame({"step": [0, 1, 2, 3], "loss": [1.0, 0.8, 0.6, 0.5],
                           "val_loss": [None, 0.9, None, 0.7]})
    drawn, original = [], matplotlib.axes.Axes.plot

    def spy(self, x, y, *args, **kwargs):
        drawn.append((list(x), list(y), kwargs.get("linestyle")))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    plot_curves([Run("mlp", 0, {}, curves)], tmp_path / "c.png")
    assert ([2, 4], [0.9, 0.7], "--") in drawn, "epochs 2 and 4 (1-based)"


def test_plot_tables_for_dvc_known_answers():
    """The tables behind dvc.yaml's top-level plots, from constructed runs and predictions."""
    curves = pd.DataFrame({"step": [0, 1, 2], "loss": [1.0, 0.8, 0.6], "accuracy": [0.5, 0.6, 0.7],
                           "val_loss": [None, 0.9, 0.7], "val_accuracy": [None, 0.55, 0.65]})
    validation = curve_rows([Run("mlp", 3, {}, curves)], "validation")
    assert validation.to_dict("list") == {"model": ["mlp", "mlp"], "seed": [3, 3], "epoch": [2, 3],
                                          "loss": [0.9, 0.7], "accuracy": [0.55, 0.65]}
    assert curve_rows([Run("mlp", 3, {}, curves)], "train")["epoch"].tolist() == [1, 2, 3]

    seed0 = pd.DataFrame({"actual": ["a", "a", "a", "b"], "predicted": ["a", "a", "b", "b"]})
    seed1 = pd.DataFrame({"actual": ["a", "b"], "predicted": ["b", "a"]})
    confusion = confusion_rows({"cnn": [seed0, seed1]}).set_index(["actual", "predicted"])
    assert confusion.loc[("a", "a"), "count"] == 2 and confusion.loc[("a", "b"), "count"] == 2
    assert confusion.loc[("a", "b"), "share"] == pytest.approx(0.5)
    assert confusion.loc[("b", "a"), "share"] == pytest.approx(0.5) and (confusion["model"] == "cnn").all()

    comparison = {"a": "cnn", "b": "mlp", "delta": -0.062, "ci_low": None, "ci_high": None, "margin": 0.01,
                  "verdict": 0}
    row = verdict_rows({"cnn_vs_mlp": comparison, "regime": {}}).iloc[0].to_dict()
    assert row["comparison"] == "cnn_vs_mlp (cnn - mlp)" and row["delta"] == pytest.approx(-6.2)
    assert row["margin_low"] == pytest.approx(-1.0) and row["verdict"] == "inconclusive" and pd.isna(row["ci_low"])


def test_the_choices_note_lists_kept_epochs_and_rates_only_where_validation_chose_them(tmp_path):
    runs = [run for run in make_runs() if run.model == make_runs()[0].model][:2]
    model = runs[0].model

    def record(keep, grid):
        for run, kept, rate in zip(runs, (3, 5), (0.01, 0.001)):
            folder = tmp_path / f"{run.model}_s{run.seed}"
            folder.mkdir(exist_ok=True)
            (folder / "params.yaml").write_text(yaml.safe_dump(
                {"seed": run.seed, "epochs": 5, "keep": keep, "kept_epoch": kept, "learning_rate_grid": grid,
                 "learning_rate_used": rate}))
        return choices_note(tmp_path, runs)

    assert record("last", None) == ""
    assert record("best", None).endswith(f": {model} kept epochs 3, 5 of 5.")
    assert record("last", [0.001, 0.01]).endswith(f": {model} kept learning rates 0.01, 0.001.")
    assert record("best", [0.001, 0.01]).endswith(f": {model} kept epochs 3, 5 of 5 at learning rates 0.01, 0.001.")


def test_the_crossover_note_quotes_the_sweep_of_this_task_and_names_a_sweep_of_another(tmp_path):
    """The paragraph is the collected crossover.md's sentences after their strategy, with the grid read from
    comparisons.csv (sizes by images per class: 20 before 100); a sweep on another task is not read as
    this one's, and no sweep says how to make one."""
    from tlstudy.report import crossover_note

    sweep = tmp_path / "sweep"
    assert crossover_note(sweep, "fashion_mnist") == (
        f"No sweep is collected in {sweep}/: `make sweep` measures where the advantage ends.", None)
    sweep.mkdir()
    (sweep / "comparisons.csv").write_text("task,epochs,examples_per_class,x,seeds\nfashion_mnist,3,100,100.0,5\n"
                                           "fashion_mnist,3,20,20.0,5\nfashion_mnist,30,20,20.0,3\n")
    (sweep / "crossover.md").write_text("**transfer**\n\n- At 3 epochs, A.\n- At 30 epochs, B.\n\n"
                                        "**linear_probe**\n\n- At 3 epochs, C.\n\n")
    (sweep / "crossover.png").write_bytes(b"png")
    assert crossover_note(sweep, "fashion_mnist") == (
        f"Where each advantage ends, from the sweep collected in {sweep}/ (20 and 100 per class at 3 epochs; "
        "20 per class at 30 epochs; 3 to 5 seeds per arm). transfer: At 3 epochs, A. At 30 epochs, B. "
        "linear_probe: At 3 epochs, C.", sweep / "crossover.png")
    assert crossover_note(sweep, "image_folder") == (
        f"The sweep collected in {sweep}/ ran on fashion_mnist, not image_folder: `make sweep` measures where "
        "the advantage ends on this task.", None)


def test_a_figure_linked_from_a_dvc_cache_of_symlinks_is_linked_by_its_workspace_path(tmp_path):
    """With `cache.type: symlink` a figure in the workspace is a link into .dvc/cache: the report links
    the workspace path (resolved, it pointed into the cache, seen on such a clone)."""
    runs = make_runs()
    cached = tmp_path / ".dvc/cache/files/md5/ab/cdef"
    cached.parent.mkdir(parents=True)
    plot_errors(runs, cached)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots/errors.png").symlink_to(cached)
    figure = {"Errors": tmp_path / "plots/errors.png"}
    md, _ = write_report(tmp_path / "report", {"epochs": 10}, summarise(runs), figure)
    assert "![Errors](../plots/errors.png)" in md.read_text()
