"""The sweep's collection and shards on constructed `dvc exp show --json` data (real experiments, run
sharded on two workers and collected through a remote: tests/test_team.py)."""


import pytest

from tlstudy.sweep import collect, parse_exp_show, regimes, tables, verdict_table


def exp(name, examples, epochs, delta, low, high, verdict, failed=False, learning_rate=0.001, trained=None):
    summary = {m: {"seeds": 3, "accuracy_mean": 0.6 + d, "accuracy_min": 0.55 + d, "accuracy_median": 0.6 + d,
                   "accuracy_max": 0.65 + d} for m, d in (("resnet50_scratch", 0.0), ("resnet50_tl", delta))}
    hypothesis = {"transfer": {"verdict": verdict, "delta": delta, "ci_low": low, "ci_high": high, "margin": 0.01,
                               "seeds": 3, "seeds_needed": 7, "raw": {"delta": 0.3, "verdict": 1}},
                  "regime": {"trained_per_class": trained}}
    params = {"examples_per_class": examples, "epochs": epochs, "train": {"learning_rate": learning_rate},
              "transfer": {"source": "mnist"}}
    data = None if failed else {"params": {"params.yaml": {"data": params}},
                                "metrics": {"metrics/models.json": {"data": summary},
                                            "metrics/comparisons.json": {"data": hypothesis}}}
    return {"revs": [{"rev": f"rev-{name}", "name": name, "data": data, "error": None}],
            "executor": {"state": "failed" if failed else "success"}, "name": name}


EXP_SHOW = [{"rev": "workspace", "name": None, "data": {}, "experiments": None},
            {"rev": "abc123", "name": "main", "data": {}, "experiments": [
                exp("big", "all", 3, 0.001, -0.01, 0.012, 0, trained=6000.0),
                exp("small", 10, 3, 0.10, 0.05, 0.15, 1),
                exp("mid", 100, 3, 0.04, 0.01, 0.07, 1),
                exp("broken", 7000, 3, 0, 0, 0, 0, failed=True)]}]


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
    assert lines[2] == "| 3 | 10 | **supported** | +10.0 | [+5.0, +15.0] | 3 (7) | supported |"
    assert "**supported** |" in lines[3] and "(changes)" not in lines[3]
    assert "**inconclusive** (changes)" in lines[4]


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
