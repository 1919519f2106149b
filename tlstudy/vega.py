"""Charts that open with no network: the page template for ``dvc plots show`` and ``dvc plots diff``
with vega, vega-lite and vega-embed inline, and vega-lite specs rendered to PNG without a browser.

Both come from the PyPI package ``vl-convert-python``, which ships the three JavaScript libraries
and a renderer. DVC's own page loads the libraries from a CDN, and is blank offline.

    python -m tlstudy.vega template .dvc/plots/offline.html    # what `make setup` runs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import vl_convert

# DVC's plot templates are vega-lite v5 specs; the bundle's default (v6) warns on every chart.
VEGA_LITE = "5.20"

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>DVC plots</title>
<script>
BUNDLE
</script>
<style>
body { font-family: sans-serif; }
table { border-spacing: 15px; }
</style>
</head>
<body>
{plot_divs}
</body>
</html>
"""


def html_template() -> str:
    """A page for DVC (``{plot_divs}``, ``{refresh_tag}``) whose charting libraries are inline.

    No ``{scripts}`` placeholder: DVC would put its CDN script tags there."""
    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE)
    for placeholder in ("{plot_divs}", "{refresh_tag}", "{scripts}", "</script>"):
        if placeholder in bundle:  # DVC fills placeholders by text replacement; a browser ends the tag
            raise RuntimeError(f"vl-convert's bundle contains {placeholder!r}; it cannot be inlined as is")
    return PAGE.replace("BUNDLE", bundle, 1)


def write_template(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_template(), encoding="utf-8")
    return path


def to_png(spec: dict, scale: float = 1.0) -> bytes:
    """A vega-lite spec (as ``dvc plots diff --json`` gives them) rendered to PNG bytes."""
    return vl_convert.vegalite_to_png(spec, vl_version=VEGA_LITE, scale=scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    template = commands.add_parser("template", help="write the offline page template for DVC's plots")
    template.add_argument("path", type=Path)
    args = parser.parse_args()
    print(f"offline plots template: {write_template(args.path)}")


if __name__ == "__main__":
    main()
