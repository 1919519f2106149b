"""The README's generated blocks, so that the answer it shows is the one the committed metrics hold.

    python -m tlstudy.readme            # rewrite README.md's generated blocks
    python -m tlstudy.readme --check    # exit 1, naming the block, where README.md disagrees
    python -m tlstudy.readme results    # `dvc exp show` narrowed to the regimes and verdicts (make results)

Blocks, each between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``: in README.md, ``answer`` (the
regime, each comparison's verdict, delta and interval from ``metrics/comparisons.json``, checked against
the declared ``metrics/hypothesis.json``, the machine from the runs' dvclive params, the date of the
commit that last changed the results) and ``costs`` (copied from the table in ``docs/performance.md``,
where the measurements are recorded with their commands) and ``crossover`` (where each strategy's
advantage ends, from the collected sweep); in docs/recipe.md, ``recipe`` (the default regime as committed
and with the training recipe on, from ``metrics/`` and ``sweep/recipe_on/``); in docs/sweeps.md, the
collected sweep's accuracy table, verdict tables and crossover (``sweep/*.md``).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import yaml

from tlstudy.fsutil import atomic_file
from tlstudy.report import sweep_grid
from tlstudy.stats import INCONCLUSIVE, MAX_SEEDS, POWER, VERDICT_WORDS, read_verdicts

README, PERFORMANCE, RECIPE = Path("README.md"), Path("docs/performance.md"), Path("docs/recipe.md")
SWEEPS, SWEEP = Path("docs/sweeps.md"), Path("sweep")  # the measured grid: its page, what `sweep collect` wrote
RECIPE_ON = SWEEP / "recipe_on"  # the default regime with train.augment, weight_decay and keep on
HYPOTHESIS, COMPARISONS = Path("metrics/hypothesis.json"), Path("metrics/comparisons.json")
LIVE = Path("dvclive")


def _block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- begin {name} [^>]*-->\n)(.*?)(<!-- end {name} -->)", re.S)


def _points(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f}"


def results_date(root: Path) -> str:
    """The day the committed results were committed; today where they differ from the last commit. A
    shallow clone (CI's checkout) cannot tell: there the README's own date stands."""
    git = ["git", "-C", str(root)]
    shallow = subprocess.run([*git, "rev-parse", "--is-shallow-repository"], capture_output=True, text=True)
    written = re.search(r"results committed (\d{4}-\d{2}-\d{2})", (root / README).read_text())
    if shallow.stdout.strip() == "true" and written:
        return written.group(1)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", str(COMPARISONS)], capture_output=True, text=True)
    day = subprocess.run([*git, "log", "-1", "--format=%cs", "--", str(COMPARISONS)], capture_output=True, text=True)
    if dirty.returncode or dirty.stdout.strip() or not day.stdout.strip():
        return date.today().isoformat()
    return day.stdout.strip()


def machines(root: Path) -> list[str]:
    """Each machine the runs trained on, as the train stage recorded it in dvclive's params."""
    found = []
    for params in sorted((root / LIVE).glob("*/params.yaml")):
        env = (yaml.safe_load(params.read_text()) or {}).get("environment")
        if env:
            widest = (env.get("cpu_isa") or "unknown").split()[-1]  # the kernels oneDNN picks
            machine = f"{env['cpu']} (up to {widest}), GPUs: {env['gpus']}, TensorFlow {env['tensorflow']}"
            found += [machine] if machine not in found else []
    return found or ["a machine that was not recorded"]


def answer(root: Path) -> str:
    """The current answer in Markdown; a declared verdict that disagrees with the details is an error."""
    details = json.loads((root / COMPARISONS).read_text())
    declared = read_verdicts(json.loads((root / HYPOTHESIS).read_text()))
    regime = details.pop("regime")
    rows = []
    for name, c in details.items():
        if name not in declared or declared[name]["verdict"] != c["verdict"]:
            raise SystemExit(f"{HYPOTHESIS} and {COMPARISONS} disagree on {name}: run `python -m stages.hypothesis` "
                             "(dvc.yaml's command) again")
        power = power_cell(c["verdict"], *power_seeds(c))
        rows.append(f"| {name} | {c['a']} − {c['b']} | **{VERDICT_WORDS[c['verdict']]}** | {_points(c['delta'])} | "
                    f"[{_points(c['ci_low'])}, {_points(c['ci_high'])}] | {c['seeds']} | {power} |")
    return "\n".join([
        f"Regime: {regime['examples_per_class']} training images per class ({regime['task']}), "
        f"{regime['epochs']} epochs, {regime['seeds']} seeds per arm, transfer pretrained on {regime['source']}. "
        f"Run on {'; '.join(machines(root))}; results committed {results_date(root)}.",
        "",
        f"| comparison | a − b | verdict | delta (points) | 95% interval | seeds | {POWER_HEADER} |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "![Each comparison's delta and 95% interval, with the margin of practical equivalence shaded]"
        "(report/forest.png)",
    ]) + "\n"


POWER_HEADER = f"seeds to decide ({100 * POWER:.0f}% power): exclude 0 / no difference"


POWER_GOALS = ("exclude_zero", "no_practical_difference")  # stats.seeds_for_power's keys, in the header's order


def power_seeds(comparison: dict) -> tuple[float, float]:
    """A comparison's seeds for 80% power per goal (``stats.seeds_for_power``): inf where more than
    ``MAX_SEEDS`` would be needed, NaN where the results predate the power advice or one seed left no spread."""
    plan = comparison.get("seeds_for_power") or {}
    return tuple(float("nan") if goal not in plan else float("inf") if plan[goal]["seeds"] is None
                 else float(plan[goal]["seeds"]) for goal in POWER_GOALS)


def power_cell(verdict: int, exclude_zero: float, no_difference: float) -> str:
    """``POWER_HEADER``'s cell from ``power_seeds``: for an inconclusive verdict, the seeds that give 80% power
    to exclude zero if the truth is the delta seen, and to show no practical difference if the truth is zero;
    'decided' where the verdict already is."""
    if verdict != INCONCLUSIVE:
        return "decided"

    def seeds(value: float) -> str:
        if value == float("inf"):
            return f"over {MAX_SEEDS}"
        return "n/a" if pd.isna(value) else f"{int(value)}"
    cells = seeds(exclude_zero), seeds(no_difference)
    return "n/a" if cells == ("n/a", "n/a") else " / ".join(cells)


def costs(root: Path) -> str:
    """The two commands' costs, as docs/performance.md records them."""
    found = _block("costs").search((root / PERFORMANCE).read_text())
    if found is None:
        raise SystemExit(f"{PERFORMANCE} has no '<!-- begin costs -->' block")
    return found.group(2)


def _verdict_cell(c: dict) -> str:
    return f"{VERDICT_WORDS[c['verdict']]}, {_points(c['delta'])} [{_points(c['ci_low'])}, {_points(c['ci_high'])}]"


def validation_at_kept_epochs(live: Path, model: str, seeds: list[int]) -> list[float]:
    """Each run's validation accuracy at the epoch whose weights it kept (dvclive's params and curves), for
    the seeds of the regime (dvclive/ keeps the folders of seeds since dropped); a run not recorded is an error."""
    scores = []
    for seed in seeds:
        run = live / f"{model}_s{seed}"
        kept = (yaml.safe_load((run / "params.yaml").read_text()) or {}).get("kept_epoch") \
            if (run / "params.yaml").exists() else None
        curve = run / "plots/metrics/eval/accuracy.tsv"
        if kept is None or not curve.exists():
            raise SystemExit(f"{run} records no kept epoch or no validation curve: re-run that regime on this code")
        rows = [line.split("\t") for line in curve.read_text().splitlines()[1:]]
        scores += [float(value) for step, value in rows if int(step) == kept - 1]
    return scores


def recipe(root: Path) -> str:
    """The default regime as committed (metrics/, dvclive/) beside the same regime with the recipe on
    (sweep/recipe_on/): each model's mean validation accuracy at its kept epochs (what a practitioner
    chooses the recipe on), its mean test accuracy with the range over seeds, and each comparison's verdict."""
    sides = []
    for folder, live in ((root / "metrics", root / LIVE), (root / RECIPE_ON, root / RECIPE_ON / "dvclive")):
        sides.append((json.loads((folder / "models.json").read_text()),
                      json.loads((folder / "comparisons.json").read_text()), live))
    (default_models, default, _), (on_models, on, _) = sides
    for knob in ("examples_per_class", "epochs", "seeds"):
        if default["regime"][knob] != on["regime"][knob]:
            raise SystemExit(f"metrics/ and {RECIPE_ON} are other regimes ({knob}: {default['regime'][knob]} "
                             f"against {on['regime'][knob]}); measure both on one regime")
    rows = ["| | the default | the recipe on |", "|---|---|---|"]
    seeds = (yaml.safe_load((root / "params.yaml").read_text()) or {})["train"]["seeds"]
    for model in default_models:
        validation = [validation_at_kept_epochs(live, model, seeds) for _, _, live in sides]
        rows.append(f"| {model}, validation accuracy % at the kept epochs | "
                    + " | ".join(f"{100 * sum(v) / len(v):.1f}" if v else "n/a" for v in validation) + " |")
        test = [f"{100 * m['accuracy_mean']:.1f} ({100 * m['accuracy_min']:.1f}-{100 * m['accuracy_max']:.1f})"
                if (m := models.get(model)) else "n/a" for models, _, _ in sides]
        rows.append(f"| {model}, test accuracy % (range over seeds) | {test[0]} | {test[1]} |")
    for name in (n for n in default if n != "regime"):
        rows.append(f"| {name}: {default[name]['a']} − {default[name]['b']} | {_verdict_cell(default[name])} | "
                    f"{_verdict_cell(on[name]) if name in on else 'n/a'} |")
    regime = default["regime"]
    return "\n".join([f"Regime: {regime['examples_per_class']} training images per class, {regime['epochs']} epochs, "
                      f"{regime['seeds']} seeds per arm; verdicts with delta and 95% interval in points.", "",
                      *rows]) + "\n"


def _collected(root: Path, name: str) -> str:
    path = root / SWEEP / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: `python -m tlstudy.sweep collect` writes it")
    return path.read_text()


def crossover(root: Path) -> str:
    """Where each strategy's advantage ends, as the sweep's crossover.md says it, with the grid it rests on."""
    grid = sweep_grid(pd.read_csv(io.StringIO(_collected(root, "comparisons.csv"))))
    return (f"Measured: {grid} (tables and figures in [docs/sweeps.md](docs/sweeps.md)).\n\n"
            f"{_collected(root, 'crossover.md').rstrip()}\n")


BLOCKS = {
    README: {"answer": answer, "crossover": crossover, "costs": costs},
    RECIPE: {"recipe": recipe},
    SWEEPS: {"sweep-accuracy": lambda root: _collected(root, "accuracy.md"),
             # table.md's sections, one level below the page's own
             "sweep-verdicts": lambda root: re.sub(r"^## ", "### ", _collected(root, "table.md"), flags=re.M),
             "sweep-crossover": lambda root: _collected(root, "crossover.md")},
}


def update(root: Path, check: bool) -> list[str]:
    """Each file's blocks regenerated; the names of the blocks that differed."""
    stale = []
    for path, blocks in BLOCKS.items():
        text = original = (root / path).read_text()
        for name, make in blocks.items():
            found = _block(name).search(text)
            if found is None:
                raise SystemExit(f"{path} has no '<!-- begin {name} -->' block: add the markers where it belongs")
            new = make(root)
            if found.group(2) != new:
                stale.append(f"{path}:{name}")
                text = text[:found.start(2)] + new + text[found.end(2):]
        if not check and text != original:
            with atomic_file(root / path) as f:
                f.write(text)
    return stale


def exp_show_columns(root: Path = Path(".")) -> tuple[str, ...]:
    """`dvc exp show`'s --drop/--keep for the regimes' knobs and each comparison's verdict in words (not its
    interval, to fit 120 columns): the verdict keys of the workspace's metrics/hypothesis.json."""
    path = root / HYPOTHESIS
    keys = []
    if path.exists():
        words = set(VERDICT_WORDS.values())
        keys = [k for k, v in json.loads(path.read_text()).items() if isinstance(v, str) and v in words]
    verdicts = "|".join(f"{re.escape(k)}$" for k in keys) or ".*verdict$"  # an older commit: numeric codes
    return "--drop", ".*", "--keep", f"Experiment$|epochs$|examples_per_class$|{verdicts}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=("update", "results"), default="update")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 where README.md is stale")
    args = parser.parse_args()
    if args.command == "results":
        dvc = [sys.executable, "-m", "dvc", "exp", "show", "--no-pager", "--only-changed", *exp_show_columns()]
        sys.exit(subprocess.run(dvc).returncode)
    stale = update(Path("."), args.check)
    if args.check and stale:
        sys.exit(f"The generated blocks {', '.join(stale)} disagree with the committed results: "
                 "run `python -m tlstudy.readme`")
    print(f"Generated blocks: {'rewrote ' + ', '.join(stale) if stale else 'up to date'}")


if __name__ == "__main__":
    main()
