"""The sweep's collection and shards on constructed `dvc exp show --json` and `dvc queue status` data
(real experiments, run sharded on two workers and collected through a remote: tests/test_team.py).
DVC itself never runs here: every test gets a fake in its place, in an empty directory, so no test
reads the queue or the experiments of the directory it was started from."""

import json
import subprocess

import pytest

import tlstudy.sweep
from tlstudy.sweep import accuracy_table, collect, parse_exp_show, queue_grid, regimes, tables, verdict_table


class FakeDvc:
    """Answers `dvc queue status`, `dvc queue logs ID` and `dvc exp run --queue`, as DVC 3.67 words them;
    any other command fails the test."""

    def __init__(self):
        self.queue = []  # (task id, name, status)
        self.logs = {}  # task id -> log text
        self.calls = []

    def __call__(self, *args, check=True, stdout=True, stderr=True):
        self.calls.append(args)
        if args[:2] == ("queue", "status"):
            order = ("Running", "Queued", "Failed", "Success")  # DVC lists the tasks by status, in this order
            rows = [f"{task}  {name}  12:32 AM   {status}"
                    for task, name, status in sorted(self.queue, key=lambda row: order.index(row[2]))]
            text = "\n".join(["Task     Name    Created    Status", *rows]) if rows else \
                "No experiment tasks in the queue."
            return subprocess.CompletedProcess(args, 0, f"{text}\n\nWorker status: 0 active, 1 idle\n", "")
        if args[:2] == ("queue", "logs"):
            return subprocess.CompletedProcess(args, 0, self.logs.get(args[2], ""), "")
        if args[:3] == ("exp", "run", "--queue"):
            name = args[args.index("-n") + 1]
            self.queue.append((f"{len(self.queue) + 1:07x}", name, "Queued"))
            return subprocess.CompletedProcess(args, 0, f"Queued experiment '{name}' for future execution.\n", "")
        raise AssertionError(f"unexpected dvc {' '.join(args)}")


@pytest.fixture(autouse=True)
def fake_dvc(monkeypatch, tmp_path):
    fake = FakeDvc()
    monkeypatch.setattr(tlstudy.sweep, "dvc", fake)
    monkeypatch.chdir(tmp_path)
    return fake


def exp(name, examples, epochs, delta, low, high, verdict, failed=False, learning_rate=0.001, trained=None,
        task=None):
    summary = {m: {"seeds": 3, "accuracy_mean": 0.6 + d, "accuracy_min": 0.55 + d, "accuracy_median": 0.6 + d,
                   "accuracy_max": 0.65 + d} for m, d in (("resnet50_scratch", 0.0), ("resnet50_tl", delta))}
    hypothesis = {"transfer": {"verdict": verdict, "delta": delta, "ci_low": low, "ci_high": high, "margin": 0.01,
                               "seeds": 3, "seeds_needed": 7, "raw": {"delta": 0.3, "verdict": 1},
                               "seeds_for_power": {"exclude_zero": {"seeds": 40, "range": [12, None]},
                                                   "no_practical_difference": {"seeds": None, "range": [None, None]}}},
                  "regime": {"trained_per_class": trained}}
    params = {"examples_per_class": examples, "epochs": epochs, "train": {"learning_rate": learning_rate},
              "transfer": {"source": "mnist"}}
    data = None if failed else {"params": {"params.yaml": {"data": params}},
                                "metrics": {"metrics/models.json": {"data": summary},
                                            "metrics/comparisons.json": {"data": hypothesis}}}
    executor = {"state": "failed" if failed else "success"}
    if task:  # a run from the queue: DVC names its task (the stash commit); a failed run's rev is that commit
        executor["local"] = {"task_id": task, "returncode": 255 if failed else 0}
    rev = task if task and failed else f"rev-{name}-{task or ''}"
    return {"revs": [{"rev": rev, "name": name, "data": data, "error": None}], "executor": executor, "name": name}


EXP_SHOW = [{"rev": "workspace", "name": None, "data": {}, "experiments": None},
            {"rev": "abc123", "name": "main", "data": {}, "experiments": [
                exp("big", "all", 3, 0.001, -0.01, 0.012, 0, trained=6000.0),
                exp("small", 10, 3, 0.10, 0.05, 0.15, 1),
                exp("mid", 100, 3, 0.04, 0.01, 0.07, 1),
                exp("broken", 7000, 3, 0, 0, 0, 0, failed=True)]}]


def test_an_experiment_still_running_is_not_collected_with_the_commits_metrics():
    """Measured with DVC 3: while a queued experiment runs, `dvc exp show --json` lists it with the state
    'running' and the metrics of the commit it started from; collected, it would be a copy of the commit."""
    running = exp("n10-e30", 10, 30, 0.008, -0.029, 0.044, 0)
    running["executor"] = {"state": "running", "local": {"task_id": "db94a31", "returncode": None}}
    queued = {**exp("n100-e30", 100, 30, 0.008, -0.029, 0.044, 0), "executor": {"state": "queued"}}
    show = [{**EXP_SHOW[1], "experiments": [*EXP_SHOW[1]["experiments"], running, queued]}]
    assert [e.name for e in parse_exp_show(show)] == ["big", "small", "mid", "broken"]


def test_parse_and_tables_from_exp_show():
    experiments = parse_exp_show(EXP_SHOW)
    assert [(e.name, e.failed) for e in experiments] == [("big", False), ("small", False), ("mid", False),
                                                         ("broken", True)]
    baseline = exp("main", 1000, 3, 0.0, -0.01, 0.01, 0)["revs"][0]
    with_baseline = [{**baseline, "rev": "abc123", "experiments": EXP_SHOW[1]["experiments"]}]
    assert [e.name for e in parse_exp_show(with_baseline)][:2] == ["main", "big"], "the commit is a regime too"
    accuracy, comparisons = tables(experiments)
    assert list(comparisons["examples_per_class"]) == [10, 100, "all"], "sorted by size, 'all' last"
    assert list(comparisons["x"]) == [10, 100, 6000], "'all' at the count the split stage trained on"
    assert set(accuracy["model"]) == {"resnet50_scratch", "resnet50_tl"}
    table = verdict_table(comparisons)
    lines = table.splitlines()
    assert lines[2] == "| 3 | 10 | **supported** | +10.0 | [+5.0, +15.0] | 3 | decided | supported |"
    assert "**supported** |" in lines[3] and "(changes)" not in lines[3]
    assert "**inconclusive** (changes)" in lines[4]
    assert lines[4].endswith("| 3 | 40 / over 200 | supported |"), "power advice where undecided, None past 200"


def test_a_param_besides_the_knobs_makes_another_regime():
    """Two experiments that differ only in the learning rate are two rows, named by that param."""
    show = [{"rev": "abc123", "name": "main", "data": {}, "experiments": [
        exp("slow", 10, 3, 0.10, 0.05, 0.15, 1, learning_rate=0.0001),
        exp("fast", 10, 3, -0.10, -0.15, -0.05, -1, learning_rate=0.001)]}]
    _, comparisons = tables(parse_exp_show(show))
    assert sorted(comparisons["regime"]) == ["train.learning_rate=0.0001", "train.learning_rate=0.001"]
    lines = verdict_table(comparisons).splitlines()
    assert lines[0].startswith("| regime | epochs |") and len(lines) == 4


def test_a_regime_collected_twice_counts_once():
    """Two commits collected together: a second run of a regime (another commit's) is left out."""
    second_commit = {"rev": "def456", "name": "later", "data": {}, "experiments": [
        exp("mid-again", 100, 3, 0.5, 0.4, 0.6, 1), exp("new", 1000, 3, 0.0, -0.01, 0.01, 0)]}
    accuracy, comparisons = tables(parse_exp_show([*EXP_SHOW, second_commit]))
    assert list(comparisons["experiment"]) == ["small", "mid", "new", "big"]
    assert len(accuracy) == 2 * 4


def test_a_param_an_older_commit_lacked_counts_at_the_value_the_others_agree_on():
    """An older commit's experiment without a param that every newer one sets alike is the same regime
    (collected once, no regime column); where the newer ones disagree, it is a regime of its own."""
    older = {"rev": "old111", "name": "older", "data": {}, "experiments": [
        exp("mid-older", 100, 3, 0.5, 0.4, 0.6, 1), exp("tiny-older", 5, 3, 0.0, -0.01, 0.01, 0)]}
    newer = {"rev": "new222", "name": "newer", "data": {}, "experiments": [
        exp("mid", 100, 3, 0.04, 0.01, 0.07, 1), exp("small", 10, 3, 0.10, 0.05, 0.15, 1)]}
    for e in newer["experiments"]:
        e["revs"][0]["data"]["params"]["params.yaml"]["data"]["train"]["deterministic"] = True
    _, comparisons = tables(parse_exp_show([older, newer]))
    assert list(comparisons["experiment"]) == ["tiny-older", "small", "mid-older"]
    assert set(comparisons["regime"]) == {""}

    newer["experiments"][1]["revs"][0]["data"]["params"]["params.yaml"]["data"]["train"]["deterministic"] = False
    _, comparisons = tables(parse_exp_show([older, newer]))
    assert len(comparisons) == 4 and "train.deterministic=None" in set(comparisons["regime"])


def test_collect_writes_figures_tables_and_failures(tmp_path):
    result = collect(tmp_path, EXP_SHOW)
    assert result == {"experiments": 3, "failed": ["broken"]}
    for name in ("data_efficiency.png", "delta.png", "table.md", "accuracy.csv", "comparisons.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert "## broken" in (tmp_path / "failed.md").read_text()


def test_shards_split_the_grid_into_disjoint_shares_that_cover_it():
    examples, epochs = ["10", "100", "1000", "all"], ["3", "10", "30"]
    whole = regimes(examples, epochs)
    assert len(whole) == 12 and len(set(whole)) == 12
    shares = [regimes(examples, epochs, f"{i}/5") for i in range(1, 6)]
    assert sorted(pair for share in shares for pair in share) == sorted(whole)
    assert [len(share) for share in shares] == [3, 3, 2, 2, 2]
    assert regimes(examples, epochs, "2/5") == [("100", "3"), ("1000", "10"), ("all", "30")]  # 2nd, 7th, 12th
    with pytest.raises(SystemExit, match="--shard must be i/n"):
        regimes(examples, epochs, "0/2")


def test_failures_reported_by_other_shards_join_the_collected_ones(tmp_path):
    shard = tmp_path / "shard-2"
    shard.mkdir()
    report = "# Failed experiments\n\n## n7000-e1\n\n```\nsplit: class 'sandal' has 6000\n```\n\n"
    (shard / "failed.md").write_text(report)
    result = collect(tmp_path / "out", EXP_SHOW, failed_reports=[shard / "failed.md"])
    assert result["failed"] == ["broken", "n7000-e1"]
    assert "## n7000-e1\n\n```\nsplit: class 'sandal' has 6000" in (tmp_path / "out/failed.md").read_text()


# As DVC 3.67 showed them in a repository where n10-e3 failed, then ran again and succeeded.
FIRST, AGAIN = "21972f5c4c8581c87b59875e41848f58a79cc179", "f7b5c4cdec04879466f7c91d4963d59452da08c1"
RERUN = [{"rev": "abc123", "name": "main", "data": {}, "experiments": [
    exp("n10-e3", 10, 3, 0.10, 0.05, 0.15, 1, task=AGAIN),
    exp("n10-e3", 10, 3, 0, 0, 0, 0, failed=True, task=FIRST),
    exp("n100-e3", 100, 3, 0.04, 0.01, 0.07, 1)]}]


@pytest.mark.parametrize("queued, failed", [
    ({AGAIN[:7]: "n10-e3"}, []),  # the re-run's sweep: its own task succeeded
    ({FIRST[:7]: "n10-e3"}, ["n10-e3"]),  # the first sweep's record: its task failed
    (None, ["n10-e3"]),  # no record (a collector): what `dvc exp show` marks failed
], ids=["rerun", "first", "no-record"])
def test_a_regime_that_failed_and_then_succeeded_is_collected(fake_dvc, tmp_path, queued, failed):
    """`dvc queue status` keeps the failed task of n10-e3 beside the successful one, under the same name."""
    fake_dvc.queue = [(FIRST[:7], "n10-e3", "Failed"), (AGAIN[:7], "n10-e3", "Success")]
    fake_dvc.logs = {FIRST[:7]: "ERROR: failed to reproduce 'split'"}
    out = tmp_path / "sweep"
    if queued is not None:
        out.mkdir()
        (out / "queued.json").write_text(json.dumps(queued))
    result = collect(out, RERUN)
    assert result == {"experiments": 2, "failed": failed}
    accuracy = (out / "accuracy.csv").read_text()
    assert accuracy.count("n10-e3,") == 2 and "0.7" in accuracy, "the successful run, both models"
    report = (out / "failed.md").read_text()
    assert report.endswith("none\n") if not failed else "## n10-e3\n\n```\nERROR: failed to reproduce" in report


def test_a_task_that_failed_only_in_the_queue_is_this_sweeps_failure(fake_dvc, tmp_path):
    """A failed queued run that `dvc exp show` lists without its state: the queue names it by task id."""
    fake_dvc.queue = [("0000001", "n1-e3", "Failed"), (FIRST[:7], "n10-e3", "Failed"),
                      ("0000002", "n100-e3", "Success")]
    (tmp_path / "queued.json").write_text(json.dumps({FIRST[:7]: "n10-e3", "0000002": "n100-e3"}))
    shown = [{**RERUN[0], "experiments": RERUN[0]["experiments"][2:]}]  # n100-e3 alone
    assert collect(tmp_path, shown)["failed"] == ["n10-e3"], "n1-e3 is another sweep's task"


def test_queueing_records_the_new_tasks_not_older_ones_of_the_same_name(fake_dvc):
    fake_dvc.queue = [(FIRST[:7], "n10-e3", "Failed")]
    tasks = queue_grid([("10", "3"), ("100", "3")], ["train.seeds=[0]"])
    assert tasks == {"0000002": "n10-e3", "0000003": "n100-e3"}
    assert fake_dvc.calls[1] == ("exp", "run", "--queue", "-n", "n10-e3", "-S", "examples_per_class=10",
                                 "-S", "epochs=3", "-S", "train.seeds=[0]")


def test_the_crossover_is_read_off_the_measured_sizes_in_log_size():
    """Lower bounds +4, -2, -5 points at 10, 100, 1,000 per class: zero is reached two thirds of the way
    from 10 to 100 in log size, 10 ** (5 / 3) = 46.4. Upper bounds +12, +3, +0.5 against a 1-point
    margin: reached at 10 ** 2.8 = 631. A budget whose advantage is never shown, and one never below
    the margin, say so."""
    import pandas as pd

    from tlstudy.sweep import crossover, crossover_sentence

    rows = []
    for epochs, lows, highs in ((10, [0.04, -0.02, -0.05], [0.12, 0.03, 0.005]),
                                (3, [-0.08, -0.2, -0.1], [0.08, 0.02, 0.015])):
        for x, low, high in zip((10, 100, 1000), lows, highs):
            rows.append({"regime": "", "epochs": epochs, "x": float(x), "comparison": "transfer", "ci_low": low,
                         "ci_high": high, "margin": 0.01})
    rows.append({**rows[0], "comparison": "init_only", "ci_low": 0.5})  # another comparison: not read
    table = crossover(pd.DataFrame(rows)).set_index("epochs")
    assert table.loc[10, "shown_until"] == pytest.approx(10 ** (5 / 3))
    assert table.loc[10, "below_margin_from"] == pytest.approx(10 ** 2.8)
    assert not table.loc[3, "shown_at_smallest"] and pd.isna(table.loc[3, "below_margin_from"])
    assert crossover_sentence(table.reset_index().iloc[0]) == (
        "At 10 epochs, the advantage is shown up to about 46 images per class; from about 631 it is below "
        "the 1-point margin.")
    assert crossover_sentence(table.reset_index().iloc[1]) == (
        "At 3 epochs, the advantage is not shown even at 10 images per class; it is not shown below the "
        "1-point margin up to 1,000.")
    one = {"regime": "", "epochs": 30, "x": 10.0, "comparison": "transfer", "margin": 0.01}
    for low, high, words in ((0.025, 0.074, "the advantage is shown there; where it ends needs a larger size"),
                             (-0.03, 0.009, "the advantage is below the 1-point margin there"),
                             (-0.05, 0.08, "the advantage is neither shown nor below the margin there")):
        row = crossover(pd.DataFrame([{**one, "ci_low": low, "ci_high": high}])).iloc[0]
        assert crossover_sentence(row) == f"At 30 epochs, only 10 images per class is measured: {words}."


def test_the_crossover_file_has_a_section_per_strategy_measured(tmp_path):
    """The linear probe's advantage ends where its own intervals say, not where transfer's do: lower bounds
    +2 then -8 points at 10 and 100 per class (zero reached at 10 ** 1.2 = 15.8), against transfer's +4 and
    -2 (46.4). A strategy not measured gets no section."""
    import pandas as pd

    from tlstudy.sweep import write_crossover

    rows = []
    for name, lows in (("transfer", [0.04, -0.02]), ("linear_probe", [0.02, -0.08])):
        for x, low in zip((10, 100), lows):
            rows.append({"regime": "", "epochs": 10, "x": float(x), "comparison": name, "ci_low": low,
                         "ci_high": 0.2, "margin": 0.01})
    write_crossover(pd.DataFrame(rows), tmp_path)
    assert (tmp_path / "crossover.md").read_text() == (
        "**transfer**\n\n- At 10 epochs, the advantage is shown up to about 46 images per class; it is not shown "
        "below the 1-point margin up to 100.\n\n"
        "**linear_probe**\n\n- At 10 epochs, the advantage is shown up to about 16 images per class; it is not "
        "shown below the 1-point margin up to 100.\n\n")
    assert (tmp_path / "crossover.png").stat().st_size > 0


def test_the_accuracy_table_has_each_models_mean_and_range_per_regime(tmp_path):
    collect(tmp_path, EXP_SHOW)
    lines = (tmp_path / "accuracy.md").read_text().splitlines()
    assert lines[0] == "| epochs | examples per class | resnet50_scratch | resnet50_tl |"
    # "small": scratch at 0.6 (0.55-0.65), transfer 0.10 higher; sorted by size, 'all' last
    assert lines[2] == "| 3 | 10 | 60.0 (55.0-65.0) | 70.0 (65.0-75.0) |"
    assert lines[4].startswith("| 3 | all | 60.0 (55.0-65.0) |") and len(lines) == 5
    older = exp("all-older", "all", 3, 0.0, -0.01, 0.01, 0)  # an older commit's 'all': no trained count recorded
    accuracy, _ = tables(parse_exp_show([{"rev": "abc", "name": "main", "data": {}, "experiments": [older]}]))
    assert accuracy_table(accuracy).splitlines()[2].startswith("| 3 | all | 60.0"), "its row stays all the same"


def test_training_fewer_models_is_the_same_regime_for_those_it_trains():
    """A sweep that leaves out the MLP and the CNN (train.models, hypothesis.comparisons) beside the commit's
    own run of every model: one regime, no regime column, each model collected once."""
    fewer = exp("resnets-only", 10, 3, 0.10, 0.05, 0.15, 1)
    fewer["revs"][0]["data"]["params"]["params.yaml"]["data"]["train"]["models"] = ["resnet50_scratch",
                                                                                    "resnet50_tl"]
    every = exp("mid", 100, 3, 0.04, 0.01, 0.07, 1)
    every["revs"][0]["data"]["params"]["params.yaml"]["data"]["train"]["models"] = ["mlp", "resnet50_scratch",
                                                                                    "resnet50_tl"]
    every["revs"][0]["data"]["params"]["params.yaml"]["data"]["hypothesis"] = {"comparisons": {"cnn_vs_mlp": 1}}
    accuracy, comparisons = tables(parse_exp_show([{"rev": "abc", "name": "main", "data": {},
                                                    "experiments": [fewer, every]}]))
    assert set(comparisons["regime"]) == {""} and list(comparisons["experiment"]) == ["resnets-only", "mid"]


def test_a_comparison_defined_otherwise_is_another_regime():
    """Dropping a comparison does not split a regime (above); pairing its name with other arms does."""
    first, second = exp("tl", 10, 3, 0.1, 0.05, 0.15, 1), exp("ft", 10, 3, 0.2, 0.1, 0.3, 1)
    for e, arm in ((first, "resnet50_tl"), (second, "resnet50_ft")):
        e["revs"][0]["data"]["params"]["params.yaml"]["data"]["hypothesis"] = {
            "comparisons": {"transfer": [arm, "resnet50_scratch"]}}
    _, comparisons = tables(parse_exp_show([{"rev": "abc", "name": "main", "data": {},
                                             "experiments": [first, second]}]))
    assert len(comparisons) == 2 and all("hypothesis.comparisons.transfer" in r for r in comparisons["regime"])
