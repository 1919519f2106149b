"""The pull-request comment: the verdicts first (base against head, in words), then
``dvc metrics diff --all --md``, then every plot of ``dvc plots diff`` as a PNG image.

    python -m tlstudy.review --base main --head HEAD --out pr-report    # or: make pr-report BASE=... HEAD=...

``--head workspace`` compares with the files on disk. The vega plots are rendered without a browser
(``tlstudy.vega.to_png``), with base and head overlaid as ``dvc plots diff`` draws them; image plots
(the report's figures) stand side by side. ``<out>/comment.md`` links every image relative to itself,
as ``cml comment create`` expects.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path

from tlstudy.dvccli import dvc
from tlstudy.stats import VERDICT_WORDS, read_verdicts
from tlstudy.vega import to_png

HYPOTHESIS, COMPARISONS = "metrics/hypothesis.json", "metrics/comparisons.json"


def revisions(base: str, head: str) -> list[str]:
    """DVC's revision arguments: ``workspace`` is what DVC compares with when no second rev is given."""
    return [base] if head == "workspace" else [base, head]


def _points(value) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}"


def _words(code) -> str:
    return "absent" if code is None else VERDICT_WORDS[int(code)]


def verdict_lines(metrics_diff: dict, details: tuple[dict, dict] = ({}, {})) -> list[str]:
    """One line per comparison: its verdict in base and in head, with the delta and interval of each.
    ``metrics_diff``: ``dvc metrics diff --all --json``; either side may hold the words or, from an
    older commit, the numeric codes (``stats.read_verdicts``). ``details``: base's and head's
    metrics/comparisons.json, for the deltas and intervals hypothesis.json leaves out."""
    values = metrics_diff.get(HYPOTHESIS, {})
    sides = []
    for side, full in zip(("old", "new"), details):
        found = read_verdicts({key: v.get(side) for key, v in values.items()})
        for name, v in found.items():
            if v["delta"] is None and isinstance(full.get(name), dict):
                v.update({f: full[name].get(f) for f in ("delta", "ci_low", "ci_high")})
        sides.append(found)
    old, new = sides
    lines = []
    for name in {**new, **old}:
        (old_code, old_delta, old_low, old_high), (new_code, new_delta, new_low, new_high) = (
            tuple(side.get(name, {}).get(f) for f in ("verdict", "delta", "ci_low", "ci_high")) for side in (old, new))
        change = "unchanged" if old_code == new_code else "changed"
        lines.append(f"- **{name}**: {_words(new_code)} (base: {_words(old_code)}, {change}); delta "
                     f"{_points(new_delta)} points, 95% interval [{_points(new_low)}, {_points(new_high)}] "
                     f"(base: {_points(old_delta)} [{_points(old_low)}, {_points(old_high)}])")
    return lines or ["- no comparison in metrics/hypothesis.json on either side"]


def comparisons_at(rev: str) -> dict:
    """metrics/comparisons.json at a revision (``workspace``: on disk); empty where it is absent."""
    if rev == "workspace":
        path = Path(COMPARISONS)
        return json.loads(path.read_text()) if path.exists() else {}
    shown = subprocess.run(["git", "show", f"{rev}:{COMPARISONS}"], capture_output=True, text=True)
    return json.loads(shown.stdout) if shown.returncode == 0 else {}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:80] or "plot"


def render_plots(plots_diff: dict, out: Path) -> list[str]:
    """Every plot of ``dvc plots diff --json`` into ``out``, as Markdown lines linking the PNGs."""
    lines = []
    for plot_id, entries in plots_diff.get("data", {}).items():
        lines += [f"### {plot_id}", ""]
        images = []
        for i, entry in enumerate(entries):
            name = f"{slug(plot_id)}_{i}.png"
            if entry["type"] == "vega":
                (out / name).write_bytes(to_png(entry["content"]))
                lines += [f"![{plot_id}]({name})", ""]
            elif entry["type"] == "image":
                shutil.copyfile(entry["url"], out / name)
                images.append((", ".join(entry["revisions"]), name))
        if images:
            lines += ["| " + " | ".join(rev for rev, _ in images) + " |", "|---" * len(images) + "|",
                      "| " + " | ".join(f"![{rev}]({name})" for rev, name in images) + " |", ""]
    return lines


def write_comment(base: str, head: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    revs = revisions(base, head)
    metrics_diff = json.loads(dvc("metrics", "diff", "--all", "--json", *revs).stdout or "{}")
    table = dvc("metrics", "diff", "--all", "--md", *revs).stdout  # a handful of rows: the unchanged verdicts too
    plots = json.loads(dvc("plots", "diff", "--json", "-o", str(out / "dvc_plots"), *revs).stdout)
    verdicts = verdict_lines(metrics_diff, (comparisons_at(base), comparisons_at(head)))
    lines = [f"## Does pretraining pay? `{head}` against `{base}`", "", "### Verdicts", "",
             *verdicts, "", "### Metrics", "", table.strip() or "no metric changed", "",
             "## Plots", "", *render_plots(plots, out)]
    comment = out / "comment.md"
    comment.write_text("\n".join(lines) + "\n")
    shutil.rmtree(out / "dvc_plots", ignore_errors=True)
    return comment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the base revision (a branch, tag or commit)")
    parser.add_argument("--head", default="workspace", help="the head revision, or 'workspace'")
    parser.add_argument("--out", type=Path, default=Path("pr-report"))
    args = parser.parse_args()
    print(f"comment: {write_comment(args.base, args.head, args.out)}")


if __name__ == "__main__":
    main()
