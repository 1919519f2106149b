"""Every stage in dvc.yaml lists what it reads and writes, so that DVC re-runs exactly the stages a change
concerns and restores whole outputs: its code deps are exactly the project modules it imports, transitively;
and when it runs, every params key it looks up and every workspace file it reads is declared, every params
key declared is read, and every file it leaves written lies under its declared outs."""

import ast
import importlib
import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml
from dvc.dependency.param import ParamsDependency

from tests.conftest import ROOT, scratch_dir
from tlstudy import params as params_module

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


def test_pretraining_does_not_depend_on_the_exploratory_plots():
    """Editing an EDA plot re-runs preprocess and report, never the MNIST pretraining (nor, through it, the
    transfer arms)."""
    assert "tlstudy/explore.py" not in import_closure("stages.pretrain")
    assert "tlstudy/explore.py" not in stages()["pretrain"]["deps"]


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


# What the stages read and write while they run: every stage's main(), in this process, in one repository
# on the tiny profile with the two small models (a comparison for the hypothesis stage to read), on
# Fashion-MNIST and (fetch, preprocess, split: the stages that read the task's own params) on a generated
# face-age layout. DVC itself expands dvc.yaml's templates, per item. A stage's reads through h5py (a
# ResNet backbone's weights) and its existence checks raise no audit event: file deps are checked for
# what is read and missing, not for what is declared and unread.

RUN_PROFILE = {"train.models": ["mlp", "cnn"], "train.seeds": [0], "pretrain.examples_per_class": 1,
               "pretrain.val_size": 10, "hypothesis.comparisons": {"cnn_vs_mlp": ["cnn", "mlp"]}}
FACE_PROFILE = {"data.task": "face_age", "face_age.format": "aihub", "face_age.image_size": 32}
FACE_STAGES = ("fetch", "preprocess", "split")  # the stages whose reads depend on the task
IGNORED = (".git", ".dvc", "__pycache__")  # DVC's and git's own files, Python's byte code
# dvclive looks the repository up (git's and DVC's ignore files); no result depends on them.
REPOSITORY_FILES = (".gitignore", ".dvcignore")


class RecordedParams(dict):
    """A params mapping that notes, by dotted key, each value the stage looks up: a key asked for with
    ``get`` or ``in`` counts even when absent (the stage's behaviour depends on its absence); a section
    counts by the keys read inside it; iterating over a section reads every key in it."""

    def __init__(self, data=(), prefix: str = "", seen: set | None = None):
        super().__init__(data)
        self._prefix, self._seen = prefix, set() if seen is None else seen

    def _read(self, key, value):
        path = f"{self._prefix}{key}"
        if isinstance(value, dict):
            return RecordedParams(value, f"{path}.", self._seen)
        self._seen.add(path)
        return value

    def __getitem__(self, key):
        return self._read(key, super().__getitem__(key))

    def get(self, key, default=None):
        return self[key] if super().__contains__(key) else self._read(key, default)

    def __contains__(self, key):
        self._seen.add(f"{self._prefix}{key}")
        return super().__contains__(key)

    def __iter__(self):  # also what ``dict(section)`` and ``**section`` go through, once __iter__ is ours
        for key in super().__iter__():
            self._read(key, super().__getitem__(key))
            yield key

    def keys(self):
        return list(iter(self))

    def items(self):
        return [(key, self[key]) for key in super().keys()]

    def values(self):
        return [self[key] for key in super().keys()]


class Opened:
    """Paths opened while a stage runs, through Python's ``open`` audit event (builtins.open, io, os.open:
    NumPy, pandas, YAML, zipfile for .keras). An audit hook stays for the process's life, so one hook
    records into whichever list is active."""

    active: list | None = None

    @staticmethod
    def hook(event: str, args: tuple) -> None:
        if event == "open" and Opened.active is not None and isinstance(args[0], (str, bytes, os.PathLike)):
            Opened.active.append((os.fsdecode(args[0]), args[1], args[2]))


sys.addaudithook(Opened.hook)


def for_reading(mode: str | None, flags: int) -> bool:
    if mode is not None:  # open(): "r", "rb", "r+", ...; "w+" and "a+" create or extend a file first
        return "r" in mode
    return flags & os.O_ACCMODE in (os.O_RDONLY, os.O_RDWR)  # os.open()


def repo_files(repo: Path) -> dict[str, tuple]:
    """Every file of the workspace, by relative path, with what changes when it is written."""
    files = {}
    for directory, subdirs, names in os.walk(repo):
        subdirs[:] = [d for d in subdirs if d not in IGNORED]
        for name in names:
            path = Path(directory, name)
            stat = path.stat()
            files[path.relative_to(repo).as_posix()] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    return files


def inside(path: str, declared: set[str]) -> bool:
    """``path`` is a declared path or lies under one (a directory dep or out covers its files)."""
    return any(path == d or path.startswith(f"{d}/") for d in declared)


def covered(key: str, declared: set[str]) -> bool:
    """A params key declared itself or through a section above it (``split`` covers ``split.test_size``)."""
    return any(key == d or key.startswith(f"{d}.") for d in declared)


@dataclass
class StageRun:
    """One expanded stage (``train@mlp-0``) as dvc.yaml declares it, and what it did when it ran."""
    task: str
    name: str
    declared_params: set[str]
    declared_deps: set[str]
    declared_outs: set[str]
    params_read: set[str] = field(default_factory=set)
    files_read: set[str] = field(default_factory=set)
    files_written: set[str] = field(default_factory=set)


STAGE_ORDER = ("fetch", "preprocess", "split", "pretrain", "train", "evaluate", "hypothesis", "report")


def resolved_stages(repo: Path, names: tuple[str, ...]) -> list:
    """The expanded stages of ``names``, in that order, by DVC's own reading of dvc.yaml (vars, matrix
    items, wdir)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        found = [s for s in dvc.index.stages if s.name.split("@")[0] in names]
    return sorted(found, key=lambda s: names.index(s.name.split("@")[0]))


def run_stage(repo: Path, stage, task: str) -> StageRun:
    """Run ``stage``'s command as ``main()`` in this process; record the params keys it looks up, the
    files of the workspace it opens for reading (those there before it ran: not its own temporaries)
    and the files it leaves written (created or changed)."""
    def relative(path) -> str:
        return Path(path).relative_to(repo).as_posix()

    declared_params = {key for d in stage.deps if isinstance(d, ParamsDependency) for key in d.params}
    record = StageRun(task, stage.name, declared_params,
                      {relative(d.fs_path) for d in stage.deps if not isinstance(d, ParamsDependency)},
                      {relative(o.fs_path) for o in stage.outs})
    module_name, *args = shlex.split(stage.cmd.split("python -m ", 1)[1])
    module = importlib.import_module(module_name)

    def load_params(*a, **kw):
        return RecordedParams(params_module.load_params(*a, **kw), seen=record.params_read)

    for out in stage.outs:  # as DVC does before it runs a stage: nothing stale is taken for written
        path = Path(out.fs_path)
        if not out.persist and path.is_dir():
            shutil.rmtree(path)
        elif not out.persist:
            path.unlink(missing_ok=True)
    before = repo_files(repo)
    opened = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(stage.wdir)
        patch.setattr(sys, "argv", [module_name, *args])
        # Most stages load (and check) the params through params.load_params; train and evaluate read
        # them through config.read_params, which checks nothing. Either way, recorded.
        patch.setattr(module, "read_params" if hasattr(module, "read_params") else "load_params", load_params)
        Opened.active = opened
        try:
            status = module.main()
        finally:
            Opened.active = None
    assert not status, f"{record.name} failed ({status})"
    after = repo_files(repo)
    root = f"{repo}{os.sep}"
    for path, mode, flags in opened:
        path = os.path.abspath(os.path.join(stage.wdir, path))
        if path.startswith(root) and relative(path) in before and for_reading(mode, flags):
            record.files_read.add(relative(path))
    record.files_written = {path for path, stat in after.items() if before.get(path) != stat}
    return record


@dataclass
class Runs:
    """The repository the stages ran in (its outputs: the Fashion-MNIST run's), and what each did."""
    repo: Path
    records: list[StageRun]


@pytest.fixture(scope="module")
def stage_runs(request, tmp_path_factory) -> Runs:
    """Fetch, preprocess and split on the face-age layout, then every stage on Fashion-MNIST, in DAG order."""
    from tests.face_layouts import write_aihub
    from tests.test_pipeline import make_repo, set_params

    with scratch_dir(request, tmp_path_factory, "stage_runs") as root:
        repo = make_repo(root / "repo", RUN_PROFILE)
        set_params(repo, {**FACE_PROFILE, "face_age.root": str(write_aihub(root / "aihub").root)})
        records = [run_stage(repo, stage, "face_age") for stage in resolved_stages(repo, FACE_STAGES)]
        set_params(repo, {"data.task": "fashion_mnist"})
        records += [run_stage(repo, stage, "fashion_mnist") for stage in resolved_stages(repo, STAGE_ORDER)]
        yield Runs(repo, records)


def runs_of(records: list[StageRun], name: str) -> list[StageRun]:
    found = [r for r in records if r.name.split("@")[0] == name]
    assert found, f"stage {name} did not run"
    return found


@pytest.mark.slow
def test_every_stage_ran(stage_runs):
    assert sorted({r.name.split("@")[0] for r in stage_runs.records}) == sorted(stages())


@pytest.mark.slow
@pytest.mark.parametrize("name", STAGE_ORDER)
def test_stage_declares_every_param_it_reads(stage_runs, name):
    for run in runs_of(stage_runs.records, name):
        missing = {key for key in run.params_read if not covered(key, run.declared_params)}
        assert not missing, f"dvc.yaml stage {run.name} ({run.task}) reads params it does not list: {sorted(missing)}"


# Declared keys that these runs cannot read, each for a reason of its own; any other declared key that no
# run reads is a stale declaration that re-runs its stage for nothing.
READ_ELSEWHERE = {
    ("evaluate", "train.batch_size"): "the batch size of BatchNorm recalibration; the MLP and CNN have none",
    ("pretrain", "models.resnet50_ft.image_size"):
        "one backbone serves every pretrained arm, built at resnet50_tl's size, which params.py holds equal",
    ("pretrain", "models.resnet50_lp.image_size"):
        "one backbone serves every pretrained arm, built at resnet50_tl's size, which params.py holds equal",
    ("pretrain", "models.resnet50_ft.backbone"):
        "one backbone serves every pretrained arm, resnet50_tl's, which params.py holds equal across the arms",
    ("pretrain", "models.resnet50_lp.backbone"):
        "one backbone serves every pretrained arm, resnet50_tl's, which params.py holds equal across the arms",
    ("fetch", "image_folder.root"): "read on data.task image_folder, which tests/test_image_folder.py runs",
    ("preprocess", "image_folder"): "read on data.task image_folder, which tests/test_image_folder.py runs",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", STAGE_ORDER)
def test_stage_reads_every_param_it_declares(stage_runs, name):
    """Over both tasks' runs; a section counts as read when a key inside it is."""
    for instance in sorted({r.name for r in runs_of(stage_runs.records, name)}):
        read = set().union(*(r.params_read for r in stage_runs.records if r.name == instance))
        declared = next(r.declared_params for r in stage_runs.records if r.name == instance)
        unread = {key for key in declared if not any(covered(k, {key}) for k in read)
                  and (name, key) not in READ_ELSEWHERE}
        assert not unread, f"dvc.yaml stage {instance} lists params it never reads: {sorted(unread)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", STAGE_ORDER)
def test_stage_declares_every_file_it_reads(stage_runs, name):
    for run in runs_of(stage_runs.records, name):
        data = {f for f in run.files_read if not f.endswith(".py") and f not in ("params.yaml", *REPOSITORY_FILES)}
        missing = {f for f in data if not inside(f, run.declared_deps)}
        assert not missing, f"dvc.yaml stage {run.name} ({run.task}) reads files it does not list: {sorted(missing)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", STAGE_ORDER)
def test_stage_writes_only_its_declared_outputs(stage_runs, name):
    """What a stage leaves behind is what DVC saves, checks out and restores from the run cache; a file
    outside its outs would be left stale by a restore."""
    for run in runs_of(stage_runs.records, name):
        stray = {f for f in run.files_written if not inside(f, run.declared_outs)}
        assert not stray, f"dvc.yaml stage {run.name} ({run.task}) writes files it does not list: {sorted(stray)}"


@pytest.mark.slow
def test_preprocess_stores_fashion_mnist_as_the_study_scaled_it(stage_runs):
    """Every pixel p of the training then the test images becomes float32(p / 255): p / 255 computed in
    double precision and rounded once, a rounding that equals float32 division's exactly; byte for byte
    what the pipeline stored before (dvc.lock's hash of the processed array stays)."""
    raw, processed = stage_runs.repo / "data/raw", stage_runs.repo / "data/processed/dataset.npz"
    pixels = np.concatenate([np.fromfile(raw / f"{part}-images-idx3-ubyte", np.uint8, offset=16)
                             for part in ("train", "t10k")])
    table = np.array([p / 255 for p in range(256)], np.float32)
    with np.load(processed) as d:
        assert d["x"].dtype == np.float32 and d["x"].shape == (70000, 28, 28)
        assert d["x"].tobytes() == table[pixels].tobytes()
