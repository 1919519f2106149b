"""The image-folder task's costs on a generated folder: the fetch stage's listing (every file read and
hashed, so that a replaced image re-runs preprocess), and the preprocess stage's decoding, in images
per second and peak memory.

    python -m benchmarks.decoding                      # 5,000 JPEGs and PNGs of mixed sizes, at 64 px
    python -m benchmarks.decoding --images 500 --size 128 --repeats 1

Each measurement runs in a fresh process, so that one's memory does not count in the next. Memory is
given two ways: ``tracemalloc``'s peak of Python and NumPy allocations during decoding, against the
final array (as face-age's decoding was measured: tests/test_faces.py), and the process's resident set just
before decoding against its peak (``ru_maxrss``) after, which adds Pillow's own buffers.
The folder is written once to a temporary directory (or ``--dir``) and removed afterwards; the files'
pages are in the OS cache by the time they are read, so the rates are for a warm cache.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image


def write_folder(root: Path, images: int, classes: int = 10, seed: int = 0) -> int:
    """``images`` files over ``classes`` folders: JPEG and PNG alternating, 48 to 640 px a side, RGB
    photos-like noise over a gradient; returns their total size in bytes."""
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(images):
        width, height = (int(v) for v in rng.integers(48, 641, 2))
        gradient = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        pixels = np.clip(gradient + rng.normal(0, 25, (height, width, 3)), 0, 255).astype(np.uint8)
        path = root / f"class{i % classes}" / f"{i:05d}.{'jpg' if i % 2 else 'png'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=90) if i % 2 else Image.fromarray(pixels).save(path)
        total += path.stat().st_size
    return total


def _status_mib(field: str) -> float:
    return int(Path("/proc/self/status").read_text().split(f"{field}:")[1].split()[0]) / 1024


def rss_mib() -> float:
    """The resident set now, and the peak restarted from it (Linux: writing 5 to clear_refs resets
    VmHWM), so that the imports' temporary buffers do not count as the step's peak."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    return _status_mib("VmHWM")


def child(what: str, root: Path, size: int) -> dict:
    from tlstudy import imagefolder

    before = rss_mib()
    start = time.perf_counter()
    entries = imagefolder.list_folder(root)
    listed = time.perf_counter() - start
    if what == "list":
        return {"files": len(entries), "seconds": listed, "rss_before_mib": before, "rss_peak_mib": peak_rss_mib()}
    before = rss_mib()
    tracemalloc.start()
    start = time.perf_counter()
    data = imagefolder.load(root, entries, size)
    seconds = time.perf_counter() - start
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"images": len(data.kept), "seconds": seconds, "array_mib": data.x.nbytes / 2**20,
            "traced_peak_mib": traced / 2**20, "rss_before_mib": before, "rss_peak_mib": peak_rss_mib()}


def measure(what: str, root: Path, size: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.decoding", "--child", what, "--dir", str(root),
                          "--size", str(size)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=64, help="image_folder.image_size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="an existing folder to measure (else one is written)")
    parser.add_argument("--child", choices=("list", "load"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.dir, args.size)))
        return
    tmp = None
    if args.dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="decoding-"))
        args.dir = tmp / "folder"
        start = time.perf_counter()
        total = write_folder(args.dir, args.images)
        print(f"wrote {args.images} images ({total / 2**20:.1f} MiB, JPEG and PNG, 48-640 px) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    size_mib = sum(p.stat().st_size for p in args.dir.rglob("*") if p.is_file()) / 2**20
    try:
        lists = [measure("list", args.dir, args.size) for _ in range(args.repeats)]
        loads = [measure("load", args.dir, args.size) for _ in range(args.repeats)]
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    seconds = [r["seconds"] for r in lists]
    print(f"fetch's listing, every file hashed (SHA-256): {lists[0]['files']} files, {size_mib:.1f} MiB, "
          f"median {statistics.median(seconds):.2f} s of {', '.join(f'{s:.2f}' for s in seconds)} "
          f"= {lists[0]['files'] / statistics.median(seconds):,.0f} files/s, "
          f"{size_mib / statistics.median(seconds):,.0f} MiB/s")
    rates = [r["images"] / r["seconds"] for r in loads]
    last = loads[-1]
    print(f"preprocess's decoding at {args.size} px: {last['images']} images, median {statistics.median(rates):,.0f} "
          f"images/s (runs: {', '.join(f'{r:,.0f}' for r in rates)}); array {last['array_mib']:.1f} MiB float32, "
          f"tracemalloc peak {last['traced_peak_mib']:.1f} MiB ({last['traced_peak_mib'] / last['array_mib']:.2f}x); "
          f"process peak RSS {last['rss_peak_mib']:.0f} MiB, {last['rss_before_mib']:.0f} MiB just before "
          f"decoding (+{last['rss_peak_mib'] - last['rss_before_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
