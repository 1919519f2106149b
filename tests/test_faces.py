"""Face-age sources: parsing, decoding of awkward images, the skipped-file report, splits."""

import hashlib
import os
import subprocess
import sys
import tracemalloc
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from stages.split import assign
from tests.conftest import ROOT
from tests.face_layouts import AIHUB_FAMILIES, colour, write_aihub, write_csv, write_utkface
from tlstudy import explore, faces
from tlstudy.faces import AgeGroups, FaceDataError, parse_aihub, parse_utkface, prepare, to_rgb
from tlstudy.splits import split_by_family_ranges, split_by_group, split_stratified

GROUPS = AgeGroups()
STUDY_SPLIT = {"train": [1, 299], "val": [801, 850], "test": [851, 900]}


@pytest.mark.parametrize("name, expected", [
    ("F0001_AGE_D_18_a1.jpg", (18, "F0001")),
    ("F0851/F0851_AGE_GF_72_h3.JPG", (72, "F0851")),
    ("F0012_AGE_S2_7_b.png", (7, "F0012")),
    ("F0001_FAM_D.jpg", None),
    ("IMG_0042.jpg", None),
])
def test_parse_aihub_names(name, expected):
    assert parse_aihub(name) == expected


@pytest.mark.parametrize("name, expected", [
    ("25_0_2_20170116174525125.jpg", 25),
    ("1_1_4_20161223215622340.jpg.chip.jpg", 1),
    ("39_1_20170116174525125.jpg.chip.jpg", None),  # a real UTKFace name without its race
    ("cat.jpg", None),
])
def test_parse_utkface_names(name, expected):
    assert parse_utkface(name) == expected


def test_age_groups_default_to_the_study_and_validate():
    assert GROUPS.names == ["0-6", "7-12", "13-19", "20-30", "31-45", "46-55", "56-66", "67-80"]
    assert [GROUPS.label(a) for a in (0, 6, 7, 30, 31, 80, 81, -1)] == [0, 0, 1, 3, 4, 7, None, None]
    assert AgeGroups.from_param(["0-17", "18-99"]).names == ["0-17", "18-99"]
    assert AgeGroups.from_param([[0, 17], [18, 99]]).label(18) == 1
    for bad in ([[0, 10], [10, 20]], [[5, 1]], ["young"], []):
        with pytest.raises(FaceDataError, match="age_groups"):
            AgeGroups.from_param(bad)


@pytest.mark.parametrize("writer, fmt", [(write_aihub, "aihub"), (write_utkface, "utkface"), (write_csv, "csv")])
def test_prepare_keeps_the_usable_images_and_reports_the_rest(tmp_path, writer, fmt):
    layout = writer(tmp_path / fmt)
    data = prepare(layout.root, fmt, GROUPS, size=32)
    assert {r.path: r.label for r in data.kept} == layout.usable
    assert Counter((r.path, r.problem) for r in data.skipped) == Counter(layout.skipped.items())
    assert data.x.shape == (len(layout.usable), 32, 32, 3) and data.x.dtype == np.uint8
    # Each mode decodes to what it was written with: a flat colour per group (noise +-20), or gray.
    checked = Counter()
    for record, image in zip(data.kept, data.x):
        mode, mean = layout.modes[record.path], image.reshape(-1, 3).mean(axis=0)
        if mode in ("RGB", "CMYK", "RGBA", "P+transparency"):
            assert np.abs(mean - colour(record.label)).max() < 12, (record.path, mode, mean)
        else:  # L, LA, I;16: gray
            assert np.ptp(image.reshape(-1, 3), axis=1).max() == 0, (record.path, mode)
        checked[mode] += 1
    assert len(checked) == 7, checked  # RGB, CMYK, RGBA, P, L, LA, I;16
    if fmt == "aihub":
        assert {r.identity for r in data.kept} == {f"F{n:04d}" for ns in AIHUB_FAMILIES.values() for n in ns}


def test_decoding_holds_the_images_once(tmp_path):
    # tracemalloc sees NumPy's allocations: decoding into one preallocated array peaks at that array
    # (plus an image per thread); stacking a list of decoded images would peak at twice it.
    layout = write_utkface(tmp_path / "utkface", per_group=12)
    tracemalloc.start()
    try:
        data = prepare(layout.root, "utkface", GROUPS, size=96)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(data.kept) == len(layout.usable) and data.skipped  # the unreadable rows were closed up
    assert peak < 1.3 * data.x.nbytes, (peak, data.x.nbytes)


def test_strict_mode_makes_unusable_files_an_error_that_lists_them(tmp_path):
    layout = write_utkface(tmp_path)
    with pytest.raises(FaceDataError, match=r"(?s)4 unusable file\(s\).*IMG_0042.jpg.*face_age.strict=false"):
        prepare(layout.root, "utkface", GROUPS, size=32, strict=True)


def test_no_usable_image_is_an_error_that_says_what_was_expected(tmp_path):
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "holiday.jpg")
    with pytest.raises(FaceDataError, match=r"(?s)no usable image under .*photos.*1 file\(s\) found.*utkface"):
        prepare(tmp_path / "photos", "utkface", GROUPS, size=32)


def test_a_missing_root_says_where_the_data_comes_from(tmp_path):
    with pytest.raises(FaceDataError) as error:
        faces.list_source(tmp_path / "nowhere", "aihub")
    message = str(error.value)
    assert "does not exist" in message and "AI-Hub account" in message and "UTKFace is public" in message
    assert "F0001/F0001_AGE_D_18_a1.jpg" in message
    with pytest.raises(FaceDataError, match="face_age.format must be one of aihub, utkface, csv"):
        faces.list_source(tmp_path, "imdb")


def replace_keeping_size_and_mtime(path, content: bytes) -> None:
    """What ``cp -p`` or ``rsync -a`` do to a file replaced by one of the same size."""
    stat = path.stat()
    assert len(content) == stat.st_size
    path.write_bytes(content)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns


def test_the_manifest_records_each_files_size_and_content(tmp_path):
    layout = write_utkface(tmp_path)
    entries = faces.list_source(layout.root, "utkface")
    files = sorted(p for p in layout.root.iterdir() if p.suffix in faces.IMAGE_SUFFIXES)
    # Known answers, computed here with hashlib and os.stat, not by the code under test.
    assert entries == [(p.name, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]
    assert all(size > 0 and len(digest) == 64 for _, size, digest in entries)


def test_the_manifest_notices_a_file_replaced_with_its_size_and_mtime_kept(tmp_path):
    layout = write_utkface(tmp_path)
    target = layout.root / "40_1_0_20170116174525999.png"  # a photo-sized file: a change far from its start
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(target)
    before = faces.list_source(layout.root, "utkface")
    content = bytearray(target.read_bytes())
    assert len(content) > 40_000
    content[-100] ^= 0xFF  # another image of the same size
    replace_keeping_size_and_mtime(target, bytes(content))
    after = faces.list_source(layout.root, "utkface")
    assert [e for e in after if e != before[after.index(e)]] == [
        (target.name, len(content), hashlib.sha256(content).hexdigest())]
    os.utime(target, ns=(0, 0))  # a touch alone: same bytes, nothing to preprocess again
    assert faces.list_source(layout.root, "utkface") == after
    Image.new("RGB", (8, 8)).save(layout.root / "33_0_1_20170116174525999.jpg")
    assert len(faces.list_source(layout.root, "utkface")) == len(before) + 1


def test_the_fetch_manifest_round_trips(tmp_path):
    entries = [("a b/c,d.jpg", 12, "0" * 64), ("e.png", -1, "")]
    faces.write_manifest(entries, tmp_path)
    assert faces.read_manifest_entries(tmp_path) == entries and faces.read_manifest(tmp_path) == ["a b/c,d.jpg",
                                                                                                    "e.png"]


def test_conversion_to_rgb_of_the_modes_real_data_has():
    red = Image.new("RGB", (4, 4), (200, 30, 30))
    assert to_rgb(red.convert("CMYK")).getpixel((0, 0)) == (200, 30, 30)
    assert to_rgb(Image.new("L", (4, 4), 77)).getpixel((0, 0)) == (77, 77, 77)
    assert to_rgb(Image.new("RGBA", (4, 4), (10, 20, 30, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("RGBA", (4, 4), (10, 20, 30, 255))).getpixel((0, 0)) == (10, 20, 30)
    sixteen = Image.fromarray(np.full((4, 4), 40000, np.uint16))
    assert to_rgb(sixteen).getpixel((0, 0)) == (255, 255, 255)


def test_aihub_metadata_csv_selects_images_and_gives_their_groups(tmp_path):
    layout = write_aihub(tmp_path)
    chosen = sorted(layout.usable)[:3]
    (tmp_path / "meta.csv").write_text("image_path,age_class\n" + f"{chosen[0]},2\n{chosen[1]},20-30\n"
                                       f"{chosen[2]},0\n")
    data = prepare(tmp_path, "aihub", GROUPS, size=32, metadata="meta.csv")
    assert {r.path: r.label for r in data.kept} == {chosen[0]: 2, chosen[1]: 3, chosen[2]: 0}
    (tmp_path / "meta.csv").write_text(f"image_path,age_class\n{chosen[0]},teen\n")
    with pytest.raises(FaceDataError, match="age_class 'teen'.*neither a group index 0-7"):
        prepare(tmp_path, "aihub", GROUPS, size=32, metadata="meta.csv")


def test_family_ranges_reproduce_the_study_split_and_leave_other_families_out():
    families = np.array(["F0001", "F0299", "F0300", "F0801", "F0850", "F0851", "F0900", "F0500", "F0001"])
    parts = split_by_family_ranges(families, STUDY_SPLIT)
    assert [list(families[parts[p]]) for p in ("train", "val", "test")] == [
        ["F0001", "F0299", "F0001"], ["F0801", "F0850"], ["F0851", "F0900"]]


def test_aihub_metadata_lists_every_image_it_leaves_out_and_a_conflicting_repeat(tmp_path):
    layout = write_aihub(tmp_path)
    listed = sorted(layout.usable)[:3]
    (tmp_path / "meta.csv").write_text("image_path,age_class\n" + f"{listed[0]},2\n./{listed[0]},20-30\n"
                                       f"{listed[1]},3\n{listed[1]},3\n{listed[2]},0\n")
    data = prepare(tmp_path, "aihub", GROUPS, size=32, metadata="meta.csv")
    assert {r.path: r.label for r in data.kept} == {listed[1]: 3, listed[2]: 0}
    problems = {r.path: r.problem for r in data.skipped}
    assert problems[listed[0]] == "conflicting_rows"  # group 2 and group 3 (20-30): which is right?
    unlisted = {f.relative_to(tmp_path).as_posix() for f in tmp_path.rglob("F*/*.*")} - set(listed)
    assert unlisted and {p for p, problem in problems.items() if problem == "not_in_metadata"} == unlisted


def test_csv_repeats_and_spacing_never_put_one_image_or_person_in_two_splits(tmp_path):
    folder = tmp_path / "csv"
    rows = []
    for person in range(12):
        for k in range(4):
            rel = f"p{person}_{k}.png"
            _save_flat(folder / rel, person)
            name = f"P{person}" + (" " if k % 2 else "")  # "P1" and "P1 ": one person, as written by hand
            rows.append(f"{rel},{20 + person},{name}")
            if k == 0:
                rows += [f"./{rel},{20 + person},{name}", f"{rel},{20 + person}, {name}"]  # repeats
    (folder / "labels.csv").write_text("path,age,identity\n" + "\n".join(rows) + "\n")
    records = faces.parse_source(folder / "labels.csv", "csv", GROUPS)
    assert len(records) == 48 and len({r.path for r in records}) == 48 and not any(r.problem for r in records)
    assert {r.identity for r in records} == {f"P{n}" for n in range(12)}
    group = np.array([r.identity for r in records])
    params = {"data": {"task": "face_age"}, "face_age": {"format": "csv"},
              "split": {"random_state": 0, "face_age": {"families": None, "val_size": 0.25, "test_size": 0.25}}}
    parts, how = assign(np.array([r.label for r in records]), group, np.full(48, -1), params)
    assert "by identity" in how
    members = {name: set(group[index]) for name, index in parts.items()}
    assert sum(len(m) for m in members.values()) == 12  # each person in exactly one split
    paths = np.array([r.path for r in records])
    assert sorted(np.concatenate([paths[i] for i in parts.values()])) == sorted(paths)


def _save_flat(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value * 20, 0, 0)).save(path)


def test_a_family_or_person_never_spans_two_splits():
    rng = np.random.default_rng(0)
    groups = np.array([f"P{n}" for n in rng.integers(0, 60, 600)])
    parts = split_by_group(groups, val_size=0.15, test_size=0.15, random_state=42)
    assert sum(len(p) for p in parts.values()) == 600
    members = {name: set(groups[index]) for name, index in parts.items()}
    assert not (members["train"] & members["val"] or members["train"] & members["test"]
                or members["val"] & members["test"])
    assert all(members.values())


def test_stratified_split_keeps_proportions_and_explains_a_class_too_small():
    y = np.repeat(np.arange(4), [100, 100, 100, 20])
    parts = split_stratified(y, 0.15, 0.15, random_state=42)
    assert sorted(np.concatenate(list(parts.values()))) == list(range(320))
    assert np.bincount(y[parts["test"]]).tolist() == [15, 15, 15, 3]
    with pytest.raises(ValueError, match="Merge small age groups"):
        split_stratified(np.array([0] * 50 + [1]), 0.15, 0.15, random_state=42)


def test_the_split_stage_picks_the_rule_for_the_task(tmp_path):
    layout = write_aihub(tmp_path)
    data = prepare(layout.root, "aihub", GROUPS, size=32)
    y, group = np.array([r.label for r in data.kept]), np.array([r.identity for r in data.kept])
    params = {"data": {"task": "face_age"}, "face_age": {"format": "aihub"},
              "split": {"random_state": 42, "face_age": {"families": STUDY_SPLIT, "val_size": 0.2, "test_size": 0.2}}}
    parts, how = assign(y, group, np.full(len(y), -1), params)
    assert "by family number" in how
    assert {p: set(group[i]) for p, i in parts.items()} == {"train": {f"F{n:04d}" for n in AIHUB_FAMILIES["train"]},
                                                            "val": {"F0801", "F0802"}, "test": {"F0851", "F0852"}}
    params["split"]["face_age"]["families"] = None
    parts, how = assign(y, group, np.full(len(y), -1), params)
    assert "by identity" in how and len(set(group[parts["test"]]) & set(group[parts["train"]])) == 0
    params["face_age"]["format"] = "utkface"
    parts, how = assign(y, np.full(len(y), ""), np.full(len(y), -1), params)
    assert "stratified" in how


def run_stage(tmp_path, changes: dict, *args: str) -> subprocess.CompletedProcess:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["task"] = "face_age"
    params["face_age"].update(changes)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})


def test_fetch_stage_with_a_missing_root_explains_and_keeps_what_was_there(tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "manifest.csv").write_text("path,size,sha256\n")
    result = run_stage(tmp_path, {"root": str(tmp_path / "aihub"), "format": "aihub"},
                       "stages.fetch", "--out", "data/raw", "--weights", "data/weights.json")
    assert result.returncode == 1
    assert "AI-Hub account" in result.stderr and "UTKFace is public" in result.stderr
    assert [p.name for p in raw.iterdir()] == ["manifest.csv"]
    assert (raw / "manifest.csv").read_text() == "path,size,sha256\n"


def test_preprocess_stage_writes_uint8_images_and_the_skipped_report(tmp_path):
    layout = write_utkface(tmp_path / "utk")
    changes = {"root": str(layout.root), "format": "utkface", "image_size": 32}
    assert run_stage(tmp_path, changes, "stages.fetch", "--out", "data/raw", "--weights", "data/weights.json"
                     ).returncode == 0
    result = run_stage(tmp_path, changes, "stages.preprocess", "--raw", "data/raw", "--out",
                       "data/processed/dataset.npz", "--eda", "plots/eda", "--metrics", "metrics/data.json")
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "data/processed/dataset.npz") as d:
        assert d["x"].dtype == np.uint8 and d["x"].shape == (80, 32, 32, 3)
        assert list(d["class_names"]) == GROUPS.names and (d["preset"] == -1).all()
        assert set(d["file"]) == set(layout.usable)
    skipped = (tmp_path / "plots/eda/skipped.csv").read_text().splitlines()
    assert skipped[0] == "path,problem,reason" and len(skipped) == 1 + 4
    assert {p.name for p in (tmp_path / "plots/eda/figures").iterdir()} == {"ages.png", "label_counts.png",
                                                                           "samples.png"}


def test_channel_statistics_match_pandas_describe():
    """Computed from histograms, they agree with describe() over every pixel."""
    for shape in [(7, 5, 5, 3), (1, 1, 2, 3), (50, 9, 9, 3)]:
        x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        expected = pd.DataFrame(x.reshape(-1, 3), columns=["red", "green", "blue"]).describe().T
        pd.testing.assert_frame_equal(explore.channel_statistics(x), expected, check_dtype=False, atol=1e-9)
