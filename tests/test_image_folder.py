"""The image-folder task: its layouts, the files it must skip and say why, exact copies, bad input,
and the known answer (Fashion-MNIST exported as a folder gives the idx path's arrays)."""

import gzip
import hashlib
import json
import logging
import os
import re
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from stages import fetch, preprocess, split
from tests.conftest import ROOT, idx_bytes
from tlstudy import faces, imagefolder
from tlstudy.data import Arrays, Splits, load_splits
from tlstudy.export_folder import export, folder_name
from tlstudy.idx import FASHION_MNIST, IdxDataset, IdxFile, fetch_idx_dataset

COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "owl": (40, 40, 200)}


def save(path: Path, colour=(200, 40, 40), size=(20, 14), mode="RGB", fmt=None, seed=0) -> Path:
    """A flat colour with noise (so that no two images are copies), saved in ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).integers(-30, 31, (size[1], size[0], 3))
    image = Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image.convert("L"), np.uint16) * 200)
    else:
        image = image.convert(mode)
    image.save(path, format=fmt)
    return path


def write_classes(root: Path, classes=("cat", "dog"), per_class=12, prefix="") -> Path:
    for c in classes:
        for i in range(per_class):
            save(root / prefix / c / f"{c}{i:02d}.png", COLOURS[c], seed=hash((prefix, c, i)) % 2**32)
    return root


def params_for(root: Path, **changes) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["task"] = "image_folder"
    params["image_folder"].update(root=str(root), image_size=16)
    params["examples_per_class"] = 2
    params["train"]["seeds"] = [0]
    for dotted, value in changes.items():
        *sections, key = dotted.split(".")
        node = params
        for section in sections:
            node = node[section]
        node[key] = value
    return params


def run_stages(work: Path, params: dict, monkeypatch) -> tuple[str, str]:
    """fetch, preprocess and split through their ``main`` in ``work``; returns (the stage that failed or
    "", its message)."""
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(work)
    commands = [(fetch, ["--out", "data/raw", "--weights", "data/weights.json"]),
                (preprocess, ["--raw", "data/raw", "--out", "data/processed/dataset.npz", "--eda", "plots/eda",
                              "--metrics", "metrics/data.json"]),
                (split, ["--processed", "data/processed/dataset.npz", "--out", "data/split"])]
    for module, args in commands:
        monkeypatch.setattr(sys, "argv", [module.__name__, *args])
        errors = []
        handler = logging.Handler()
        handler.emit = lambda record, errors=errors: (errors.append(record.getMessage())
                                                      if record.levelno >= logging.ERROR else None)
        logging.getLogger().addHandler(handler)
        try:
            code = module.main()
        except SystemExit as e:
            code, errors = 1, [str(e)]
        finally:
            logging.getLogger().removeHandler(handler)
        if code:
            return module.__name__.split(".")[-1], "\n".join(errors)
    return "", ""


def skipped_rows(work: Path) -> dict[str, str]:
    frame = pd.read_csv(work / "plots/eda/skipped.csv")
    assert list(frame.columns) == ["path", "problem", "reason"]
    return dict(zip(frame["path"], frame["problem"]))


# --- Bad input: a clear error from the first stage that can tell, or a listed skip; nothing half-written.

def empty_root(root):
    root.mkdir()


def single_class(root):
    write_classes(root, ("cat",))


def nested_too_deep(root):
    write_classes(root / "photos")


def class_without_readable_image(root):
    write_classes(root, ("cat",))
    (root / "dog").mkdir()
    (root / "dog" / "dog01.jpg").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")


def empty_class_folder(root):
    write_classes(root)
    (root / "owl").mkdir()


def some_splits_only(root):
    write_classes(root, prefix="train")
    write_classes(root, prefix="test")


def class_only_in_test(root):
    for part in ("train", "val"):
        write_classes(root, prefix=part)
    write_classes(root, ("cat", "dog", "owl"), prefix="test")


def symlink_loop(root):
    write_classes(root)
    (root / "cat" / "again").symlink_to(root, target_is_directory=True)


def unreadable_file(root):
    write_classes(root)
    os.chmod(save(root / "cat" / "locked.png"), 0)


def unreadable_folder(root):
    write_classes(root)
    save(root / "dog" / "more" / "dog99.png")
    os.chmod(root / "dog" / "more", 0)


def broken_link(root):
    write_classes(root)
    (root / "dog" / "gone.png").symlink_to(root / "nowhere.png")


def few_images_for_examples_per_class(root):
    write_classes(root)


def missing_root(root):
    pass


def deny_as_if_chmod_000(monkeypatch) -> None:
    """What a user who is not root meets on a file or folder of mode 000: PermissionError on opening it."""
    import builtins

    def denied(path) -> bool:
        return str(path).endswith(("locked.png", "dog/more"))

    def guard(original):
        def call(path, *args, **kwargs):
            if denied(path):
                raise PermissionError(13, "Permission denied", str(path))
            return original(path, *args, **kwargs)
        return call

    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(os, "scandir", guard(os.scandir))


BAD_INPUT = [
    # (case, param changes, the stage that stops, what its message says) or (..., "", {path: problem})
    (missing_root, {}, "fetch", r"image_folder.root '.*root' does not exist"),
    (empty_root, {}, "fetch", r"root' holds no files.*one folder per class"),
    (single_class, {}, "fetch", r"holds one class folder, cat/; a classifier needs two or more"),
    (nested_too_deep, {}, "fetch", r"photos/ holds the folders cat, dog: .*nested one level too deep; "
                                   r"set image_folder.root to .*root/photos"),
    (class_without_readable_image, {}, "preprocess",
     r"class 'dog' has no usable image under .*Pillow does not recognise the file as an image; "
     r"a file the system or a tool writes"),
    (empty_class_folder, {}, "fetch", r"class folder\(s\) with no file at all under .*: owl/"),
    (some_splits_only, {}, "fetch", r"has train/, test/ but no val/: give all three splits"),
    (class_only_in_test, {}, "fetch", r"class folder\(s\) owl appear under val/ or test/ but not under train/"),
    (few_images_for_examples_per_class, {"examples_per_class": 50}, "split",
     r"examples_per_class is 50, but class 'cat' has \d+ training images"),
    (symlink_loop, {}, "", {"cat/again/": "linked_folder_seen"}),
    (unreadable_file, {}, "", {"cat/locked.png": "unreadable"}),
    (unreadable_folder, {}, "", {"dog/more/": "unreadable_folder"}),
    (broken_link, {}, "", {"dog/gone.png": "unreadable"}),
]


@pytest.mark.parametrize("case, changes, stage, expected", BAD_INPUT, ids=[c[0].__name__ for c in BAD_INPUT])
def test_bad_input_is_a_clear_error_or_a_listed_skip_and_nothing_half_written(tmp_path, monkeypatch, case, changes,
                                                                                stage, expected):
    root, work = tmp_path / "root", tmp_path / "work"
    work.mkdir()
    case(root)
    if case in (unreadable_file, unreadable_folder) and os.geteuid() == 0:
        deny_as_if_chmod_000(monkeypatch)  # root reads whatever the mode says
    failed, message = run_stages(work, params_for(root, **changes), monkeypatch)
    assert failed == stage, message
    outputs = {"fetch": "data/raw", "preprocess": "data/processed/dataset.npz", "split": "data/split"}
    if stage:
        assert re.search(expected, message, re.S), message
        assert not (work / outputs[stage]).exists()  # the failing stage wrote nothing
        assert not [p for p in work.rglob(".*") if p.name != ".DS_Store"]  # nor left a temporary behind
    else:
        assert all((work / out).exists() for out in outputs.values())
        rows = skipped_rows(work)
        assert {path: rows.get(path) for path in expected} == expected



# --- Modes, skips and the one array.

def test_any_mode_pillow_reads_is_decoded_and_every_unusable_file_is_listed(tmp_path, monkeypatch):
    root = tmp_path / "root"
    modes = {"RGB": ".jpg", "P": ".png", "CMYK": ".jpg", "RGBA": ".png", "I;16": ".png", "L": ".png", "1": ".bmp"}
    for i, (mode, suffix) in enumerate(modes.items()):
        for c in ("cat", "dog"):
            save(root / c / f"{mode.replace(';', '')}{suffix}", COLOURS[c], size=(30 + i, 20), mode=mode, seed=i)
    (root / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "dog" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (root / "dog" / "notes.txt").write_text("labels are folder names")
    truncated = save(root / "cat" / "truncated.jpg", size=(40, 40)).read_bytes()
    (root / "cat" / "truncated.jpg").write_bytes(truncated[: len(truncated) // 2])
    save(root / "dog" / "huge.png", size=(60, 60))  # 3,600 pixels: over the limit below, under twice it
    save(root / "cat" / "bomb.png", size=(100, 100))  # over twice the limit: Pillow itself refuses it
    (root / "README.txt").write_text("outside any class folder")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2500)
    data = imagefolder.load(root, imagefolder.list_folder(root), size=16)
    assert data.x.dtype == np.float32 and data.x.shape == (14, 16, 16, 3)  # colour: RGB
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0
    assert {r.path for r in data.kept} == {f"{c}/{m.replace(';', '')}{s}" for c in ("cat", "dog") for m, s in
                                          modes.items()}
    # Each decoded image against its source pixels (``save``'s noise, regenerated), resized by Pillow
    # alone; within what each format loses.
    for row, record in enumerate(data.kept):
        i = list(modes).index(next(m for m in modes if m.replace(";", "") == Path(record.path).stem))
        source = Image.open(save(tmp_path / "source.png", COLOURS[record.path[:3]], size=(30 + i, 20), seed=i))
        rgb = np.asarray(source.resize((16, 16), Image.Resampling.BILINEAR), np.float32) / 255
        grey = np.asarray(source.convert("L").resize((16, 16), Image.Resampling.BILINEAR), np.float32) / 255
        decoded, mode = data.x[row], list(modes)[i]
        if mode in ("RGB", "CMYK", "P", "RGBA"):  # JPEG and a 256-colour palette lose a little
            assert np.abs(decoded - rgb).mean() < 0.05, (record.path, np.abs(decoded - rgb).mean())
        elif mode == "L":
            assert np.array_equal(decoded, np.repeat(grey[..., None], 3, axis=2)), record.path
        elif mode == "I;16":  # 16-bit levels brought to 8 bits, the brightest pixel at 1
            brightest = np.asarray(source.convert("L")).max() / 255
            assert np.abs(decoded[..., 0] - grey / brightest).max() < 0.02, record.path  # 8-bit rounding, stretched
        else:  # "1": dithered black and white keeps the mean grey level
            assert abs(decoded.mean() - grey.mean()) < 0.1, (record.path, decoded.mean(), grey.mean())
    assert {r.path: r.problem for r in data.skipped} == {
        "cat/.DS_Store": "system_file", "dog/Thumbs.db": "system_file", "dog/notes.txt": "not_an_image",
        "cat/truncated.jpg": "corrupt", "dog/huge.png": "decompression_bomb", "cat/bomb.png": "decompression_bomb",
        "README.txt": "outside_class_folder"}


def test_one_channel_when_every_image_is_grayscale(tmp_path):
    root = tmp_path / "root"
    for i, mode in enumerate(("L", "I;16", "1", "LA")):
        for c in ("cat", "dog"):
            save(root / c / f"{i}.png", COLOURS[c], mode=mode, seed=i)
    data = imagefolder.load(root, imagefolder.list_folder(root), size=12)
    assert data.grayscale and data.x.shape == (8, 12, 12)
    save(root / "dog" / "colour.png", COLOURS["dog"], mode="RGB")
    assert imagefolder.load(root, imagefolder.list_folder(root), size=12).x.shape == (9, 12, 12, 3)


def test_decoding_holds_the_images_once(tmp_path):
    root = tmp_path / "root"
    for c in COLOURS:
        for i in range(40):
            save(root / c / f"{i}.jpg", COLOURS[c], size=(90 + i, 70), seed=i)
    entries = imagefolder.list_folder(root)
    tracemalloc.start()
    try:
        data = imagefolder.load(root, entries, size=64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.x.shape == (120, 64, 64, 3)
    assert peak < 1.3 * data.x.nbytes, (peak, data.x.nbytes)  # stacking decoded images would be 2x


# --- The manifest.

def test_the_manifest_notices_an_image_replaced_with_its_size_and_mtime_kept(tmp_path):
    root = write_classes(tmp_path / "root", per_class=3)
    before = imagefolder.list_folder(root)
    files = sorted(p for p in root.rglob("*.png"))
    assert before == sorted((p.relative_to(root).as_posix(), p.stat().st_size,
                             hashlib.sha256(p.read_bytes()).hexdigest()) for p in files)
    target, other = files[0], files[1]
    stat = target.stat()
    content = bytearray(target.read_bytes())
    content[len(content) // 2] ^= 0x01
    target.write_bytes(bytes(content))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p or rsync -a leave it
    assert target.stat().st_size == stat.st_size and target.stat().st_mtime_ns == stat.st_mtime_ns
    after = imagefolder.list_folder(root)
    changed = [a for a, b in zip(after, before) if a != b]
    assert changed == [(target.relative_to(root).as_posix(), stat.st_size, hashlib.sha256(content).hexdigest())]
    os.utime(other, ns=(1, 1))  # touched, same bytes: nothing to decode again
    (root / "cat" / ".DS_Store").write_bytes(b"changes whenever Finder opens the folder")
    listed = imagefolder.list_folder(root)
    assert [e for e in listed if e[0] != "cat/.DS_Store"] == after
    assert ("cat/.DS_Store", -1, "") in listed


# --- Exact copies.

def given_splits_with_copies(root: Path) -> tuple[Path, Path]:
    for part in imagefolder.SPLITS:
        write_classes(root, prefix=part, per_class=4)
    leak = root / "train" / "cat" / "copy_of_test.png"
    leak.write_bytes((root / "test" / "cat" / "cat00.png").read_bytes())
    twin = root / "train" / "dog" / "twin.png"
    twin.write_bytes((root / "train" / "dog" / "dog00.png").read_bytes())  # a copy within train: counted only
    return leak, twin


@pytest.mark.parametrize("drop", [True, False])
def test_copies_of_evaluation_images_are_reported_and_dropped_from_training(tmp_path, monkeypatch, drop):
    root, work = tmp_path / "root", tmp_path / "work"
    work.mkdir()
    leak, twin = given_splits_with_copies(root)
    failed, message = run_stages(work, params_for(root, **{"image_folder.drop_duplicates": drop}), monkeypatch)
    assert not failed, message
    summary = json.loads((work / "metrics/data.json").read_text())
    assert summary["duplicates"] == {"images_with_a_copy": 4, "copies_across_splits": 1,
                                     "training_images_copying_val_or_test": 1,
                                     "copies_in_two_classes": 0, "dropped_from_training": int(drop)}
    with np.load(work / "data/processed/dataset.npz") as d:
        files = list(d["file"])
        preset, y, x = d["preset"], d["y"], d["x"]
    assert ("train/cat/copy_of_test.png" in files) is not drop and "train/dog/twin.png" in files
    assert skipped_rows(work).get("train/cat/copy_of_test.png") == ("copy_of_evaluation_image" if drop else None)
    splits = load_splits(work / "data/processed/dataset.npz", work / "data/split")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (9 + (not drop), 8, 8)
    assert summary["per_split"] == {"train": 9 + (not drop), "val": 8, "test": 8}
    assert list(preset) == [imagefolder.SPLITS.index(f.split("/")[0]) for f in files]
    assert list(y) == [["cat", "dog"].index(f.split("/")[1]) for f in files]
    assert x.shape == (len(files), 16, 16, 3)


def test_a_random_split_keeps_the_copies_of_an_image_together(tmp_path):
    y = np.repeat([0, 1, 2], 40)
    group = np.full(len(y), "", dtype=object)
    rng = np.random.default_rng(1)
    for k, rows in enumerate(rng.choice(len(y), (15, 3), replace=False)):
        group[rows] = f"sha256:{k}"
        y[rows] = y[rows[0]]  # copies share their label
    group = group.astype(str)
    parts = imagefolder.split_stratified_keeping_copies(y, group, 0.2, 0.2, random_state=42)
    assert sorted(np.concatenate(list(parts.values()))) == list(range(len(y)))
    where = {i: name for name, rows in parts.items() for i in rows}
    for k in range(15):
        assert len({where[i] for i in np.flatnonzero(group == f"sha256:{k}")}) == 1
    assert all(np.bincount(y[rows], minlength=3).min() > 0 for rows in parts.values())
    # Without copies: the images scikit-learn's stratified split draws (computed here with it directly).
    from sklearn.model_selection import train_test_split
    plain = imagefolder.split_stratified_keeping_copies(y, np.full(len(y), ""), 0.2, 0.2, random_state=7)
    rest, test = train_test_split(np.arange(len(y)), test_size=0.2, random_state=7, stratify=y)
    assert sorted(plain["test"]) == sorted(test)


# --- The known answer: Fashion-MNIST through the folder gives the idx path's arrays and predictions.

def synthetic_fashion(directory: Path) -> IdxDataset:
    """Fashion-MNIST's shape in small: 10 classes, 28x28, 40 training and 20 test images per class,
    class-dependent patterns that an MLP can learn; idx files gzipped with their MD5s."""
    rng = np.random.default_rng(0)
    arrays, files = {}, []
    for name, n in (("train", 400), ("t10k", 200)):
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        base = (np.arange(28 * 28).reshape(28, 28)[None] * (labels[:, None, None] + 1)) % 256
        images = np.clip(base + rng.integers(-40, 41, (n, 28, 28)), 0, 255).astype(np.uint8)
        arrays[f"{name}-images-idx3-ubyte"], arrays[f"{name}-labels-idx1-ubyte"] = images, labels
    directory.mkdir(parents=True)
    for name, array in arrays.items():
        raw = idx_bytes(array)
        (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
        files.append(IdxFile(name, hashlib.md5(raw).hexdigest(), array.ndim, len(array)))
    order = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    files.sort(key=lambda f: order.index(f.name))
    return IdxDataset("synthetic-fashion", tuple(files), ("http://127.0.0.1:9/",), FASHION_MNIST.class_names)


@pytest.mark.parametrize("source", ["synthetic", "fashion-mnist"])
def test_fashion_mnist_as_a_folder_gives_the_idx_arrays_and_identical_mlp_predictions(tmp_path, monkeypatch, source):
    if source == "fashion-mnist":
        if not Path(FASHION_MNIST.system_dirs[0]).is_dir():
            pytest.skip("Debian's dataset-fashion-mnist is not installed (make setup installs it)")
        dataset, source_dir, per_class = FASHION_MNIST, FASHION_MNIST.system_dirs[0], 20
    else:
        dataset, source_dir, per_class = synthetic_fashion(tmp_path / "idx"), tmp_path / "idx", None
        monkeypatch.setattr(preprocess, "FASHION_MNIST", dataset)
    raw = tmp_path / "raw"
    fetch_idx_dataset(dataset, raw, source_dir)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())

    # The idx path, as the preprocess and split stages compute it.
    reference, _ = preprocess.fashion_mnist(raw, tmp_path / "eda_idx")
    reference_parts, _ = split.assign(reference["y"], reference["group"], reference["preset"], params)

    # The folder: exported, then fetched, preprocessed and split as data.task=image_folder.
    folder = tmp_path / "folder"
    written = export(raw, folder, params["split"]["test_size"], params["split"]["random_state"], per_class, dataset)
    assert sorted(p.name for p in (folder / "train").iterdir()) == [
        folder_name(i, n) for i, n in enumerate(dataset.class_names)]
    assert (folder / "train" / "0-T-shirt_top").is_dir()
    folder_params = params_for(folder, **{"image_folder.image_size": 28})
    entries = imagefolder.list_folder(folder)
    faces.write_manifest(entries, tmp_path)
    arrays, summary = preprocess.image_folder(folder_params, tmp_path, tmp_path / "eda_folder")
    parts, how = split.assign(arrays["y"], arrays["group"], arrays["preset"], folder_params)
    assert "as the folder gives them" in how and summary["channels"].startswith("grayscale")
    assert {name: len(rows) for name, rows in parts.items()} == written

    rows_in_idx = np.array([int(Path(f).stem) for f in arrays["file"]])
    assert arrays["x"].dtype == reference["x"].dtype and arrays["x"].shape[1:] == reference["x"].shape[1:]
    for name in imagefolder.SPLITS:
        rows = rows_in_idx[parts[name]]
        assert set(rows) <= set(reference_parts[name])  # the study's split, image for image
        assert np.array_equal(arrays["x"][parts[name]], reference["x"][rows])  # bit for bit: float32 == float32
        assert np.array_equal(arrays["y"][parts[name]], reference["y"][rows])
    if per_class is None:  # the whole dataset: every image of every split
        assert sorted(rows_in_idx) == list(range(len(reference["y"])))

    # An MLP trained on each, the same images in the same order: predictions equal to the last bit.
    from tlstudy.training import TrainConfig, train_model

    def splits_of(x, y) -> Splits:
        return Splits(*(Arrays(x[parts[n]], y[parts[n]]) for n in imagefolder.SPLITS), list(dataset.class_names))

    config = TrainConfig(epochs=2, batch_size=32, model_options={"dropout": 0.5, "units": 64})
    predictions = []
    for x, y in ((arrays["x"], arrays["y"]), (reference["x"][rows_in_idx], reference["y"][rows_in_idx])):
        model, _ = train_model("mlp", splits_of(x, y), config, seed=0)
        predictions.append(model.predict(x[parts["test"]], batch_size=64, verbose=0))
    assert predictions[0].dtype == np.float32 and np.array_equal(predictions[0], predictions[1])
    assert (predictions[0].argmax(axis=1) == arrays["y"][parts["test"]]).mean() > 0.3  # it learned something


# --- Its params, checked with the others before any stage runs.

@pytest.mark.parametrize("changes, expected", [
    ({"image_folder.root": None}, "image_folder.root is None; give the folder of class folders"),
    ({"image_folder.image_size": 4}, "image_folder.image_size is 4; use an integer of at least 8"),
    ({"image_folder.drop_duplicates": "yes"}, "image_folder.drop_duplicates is 'yes'; use true or false"),
    ({"split.image_folder.val_size": 0.6, "split.image_folder.test_size": 0.5},
     "split.image_folder.val_size and test_size are 0.6 and 0.5; use fractions above 0 whose sum is below 1"),
])
def test_image_folder_params_are_checked(tmp_path, changes, expected):
    from tlstudy.params import check_params

    assert check_params(params_for(tmp_path)) == []
    problems = check_params(params_for(tmp_path, **changes))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


# --- Through DVC: the stages' params and deps as dvc.yaml declares them.

@pytest.mark.slow
def test_dvc_reruns_preprocess_for_a_replaced_image_and_not_for_a_touched_one(tmp_path):
    from tests.test_pipeline import make_repo, run, set_params, stages_run

    folder = write_classes(tmp_path / "images", ("cat", "dog", "owl"), per_class=8)
    repo = make_repo(tmp_path / "repo", {"data.task": "image_folder", "image_folder.root": str(folder),
                                         "image_folder.image_size": 16, "examples_per_class": 2,
                                         "train.seeds": [0]})
    assert {"preprocess", "split"} <= stages_run(run(repo, sys.executable, "-m", "dvc", "repro", "split"))
    with np.load(repo / "data/processed/dataset.npz") as d:
        assert d["x"].shape == (24, 16, 16, 3) and list(d["class_names"]) == ["cat", "dog", "owl"]
    replaced, touched = sorted((folder / "cat").iterdir())[:2]
    stat = replaced.stat()
    content = bytearray(replaced.read_bytes())
    content[-20] ^= 0x01
    replaced.write_bytes(bytes(content))
    os.utime(replaced, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p leaves it
    assert "preprocess" in stages_run(run(repo, sys.executable, "-m", "dvc", "repro", "split"))
    os.utime(touched, ns=(1, 1))
    assert stages_run(run(repo, sys.executable, "-m", "dvc", "repro", "split")) == {"data/dvc.yaml:fetch"}
    set_params(repo, {"image_folder.image_size": 12, "image_folder.drop_duplicates": False})
    assert "preprocess" in stages_run(run(repo, sys.executable, "-m", "dvc", "repro", "split"))
    with np.load(repo / "data/processed/dataset.npz") as d:  # the flipped byte broke the replaced PNG's data
        assert d["x"].shape == (23, 12, 12, 3)
    assert skipped_rows(repo) == {f"cat/{replaced.name}": "corrupt"}
