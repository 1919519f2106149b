"""Every stage's deps in dvc.yaml list exactly the project modules it imports, transitively: an
edit to any of them re-runs the stage, and no stage re-runs for a module it no longer uses."""

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PACKAGES = ("stages", "tlstudy")


def module_file(module: str) -> Path | None:
    path = ROOT / (module.replace(".", "/") + ".py")
    return path if path.exists() else None


def imported_modules(path: Path) -> set[str]:
    """Project modules a file imports: ``import tlstudy.x``, ``from tlstudy.x import y``,
    ``from tlstudy import x`` (where x is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in PACKAGES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    return found


def package_init(module: str) -> Path | None:
    path = ROOT / module.replace(".", "/") / "__init__.py"
    return path if path.exists() else None


def import_closure(module: str) -> set[str]:
    """The files of ``module`` and every project module it imports, transitively, relative to the root;
    importing ``a.b`` runs ``a/__init__.py`` first, so a package's ``__init__`` counts too."""
    files, todo = set(), [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for path in [package_init(".".join(parts[:i])) for i in range(1, len(parts) + 1)] + [module_file(name)]:
            if path is None or path in files:
                continue
            files.add(path)
            todo += imported_modules(path)
    return {p.relative_to(ROOT).as_posix() for p in files}


PIPELINE_FILES = ("dvc.yaml", "data/dvc.yaml")  # data/dvc.yaml: the fetch stage, with a lock file of its own


def stages() -> dict:
    return {name: stage for path in PIPELINE_FILES
            for name, stage in yaml.safe_load((ROOT / path).read_text())["stages"].items()}


def test_the_fetch_stage_writes_where_dvc_yaml_reads():
    """data/dvc.yaml spells out the paths that dvc.yaml's vars hold for the stages after fetch."""
    paths = yaml.safe_load((ROOT / "dvc.yaml").read_text())["vars"][0]["paths"]
    outs = [next(iter(out)) if isinstance(out, dict) else out for out in stages()["fetch"]["outs"]]
    assert outs == [paths["raw"], paths["weights"]]
    assert stages()["fetch"]["wdir"] == "..", "paths relative to the repository, as in dvc.yaml"


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_deps_are_exactly_its_import_closure(name):
    stage = stages()[name]
    module = stage["cmd"].split("python -m ", 1)[1].split()[0]
    declared = {d for d in stage.get("deps", []) if isinstance(d, str) and d.endswith(".py")}
    expected = import_closure(module)
    assert declared == expected, (f"dvc.yaml stage {name}: missing {sorted(expected - declared)}, "
                                  f"not imported {sorted(declared - expected)}")


def test_the_closure_follows_from_package_imports():
    """A known answer: the report stage reaches tlstudy/stats.py through `from tlstudy import report, stats`."""
    closure = import_closure("stages.report")
    assert {"stages/report.py", "tlstudy/report.py", "tlstudy/stats.py", "tlstudy/explore.py"} <= closure
    assert {"stages/__init__.py", "tlstudy/__init__.py"} <= closure, "packages run their __init__ first"


def test_dvc_reads_yaml_with_the_c_parser():
    """DVC parses params.yaml once per stage and dvc.lock twice per command, with ruamel.yaml's safe
    loader: in pure Python that was most of a no-op ``dvc repro`` here. The lock installs the C
    parser (ruamel.yaml.clib), which ruamel.yaml 0.19 no longer pulls in."""
    from ruamel.yaml import YAML

    assert YAML(typ="safe").Parser.__name__ == "CParser", "make setup: requirements-cpu.txt (ruamel.yaml.clib)"
