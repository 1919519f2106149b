"""The original study's exploratory outputs: null count, pixel statistics, label counts, a sample grid."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tlstudy.fsutil import atomic_file  # noqa: E402


def pixel_frame(images: np.ndarray) -> pd.DataFrame:
    """One row per image, one column per pixel (``pixel0`` ...), as the study's DataFrame."""
    flat = images.reshape(len(images), -1)
    return pd.DataFrame(flat, columns=[f"pixel{i}" for i in range(flat.shape[1])])


def pixel_statistics(images: np.ndarray) -> pd.DataFrame:
    """``DataFrame.describe()`` of every pixel, transposed: one row per pixel, one column per statistic."""
    return pixel_frame(images).describe().T


def label_counts(labels: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    counts = np.bincount(labels, minlength=len(class_names))
    return pd.DataFrame({"label": np.arange(len(class_names)), "class": class_names, "count": counts})


def save_figure(fig, path: Path) -> None:
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_label_counts(counts: pd.DataFrame, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(counts["class"], counts["count"], color="tab:blue")
    ax.set_title(title)
    ax.set_ylabel("images")
    ax.tick_params(axis="x", rotation=45)
    save_figure(fig, path)


def first_of_each_class(labels: np.ndarray) -> np.ndarray:
    """The index of each class's first image, in class order (absent classes skipped)."""
    return np.unique(labels, return_index=True)[1]


def plot_sample_grid(images: np.ndarray, labels: np.ndarray, class_names: list[str], path: Path,
                     count: int = 10) -> None:
    """The first ``count`` images, each titled with its class name."""
    count = min(count, len(images))
    cols = min(count, 5)
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
    for ax in np.ravel(axes)[count:]:
        ax.axis("off")
    for ax, image, label in zip(np.ravel(axes), images[:count], labels[:count]):
        ax.imshow(image, cmap="gray")
        ax.set_title(class_names[label], fontsize=9)
        ax.axis("off")
    save_figure(fig, path)


def channel_statistics(images: np.ndarray) -> pd.DataFrame:
    """``describe()`` of each colour channel's uint8 values over all images, one row per channel,
    computed from a 256-bin histogram: a DataFrame of every pixel would need tens of GB for a real
    face dataset."""
    rows = {}
    for channel, name in enumerate(["red", "green", "blue"][: images.shape[-1]]):
        counts = np.bincount(images[..., channel].ravel(), minlength=256).astype(np.float64)
        n, values = counts.sum(), np.arange(256.0)
        mean = (counts * values).sum() / n
        std = np.sqrt((counts * (values - mean) ** 2).sum() / (n - 1)) if n > 1 else np.nan
        cumulative, present = np.cumsum(counts), np.flatnonzero(counts)
        rows[name] = {"count": n, "mean": mean, "std": std, "min": float(present[0]),
                      **{f"{q:.0%}": _histogram_quantile(cumulative, q) for q in (0.25, 0.5, 0.75)},
                      "max": float(present[-1])}
    return pd.DataFrame.from_dict(rows, orient="index")


def _histogram_quantile(cumulative: np.ndarray, q: float) -> float:
    """Quantile ``q`` of the values 0..255 counted in ``cumulative`` (the cumulative histogram), by linear
    interpolation between order statistics, as pandas and NumPy compute it."""
    position = q * (cumulative[-1] - 1)
    low, high = (np.searchsorted(cumulative, k, side="right") for k in (np.floor(position), np.ceil(position)))
    return low + (high - low) * (position - np.floor(position))


def plot_age_histogram(ages: np.ndarray, bounds: list[tuple[int, int]], path: Path) -> None:
    """Images per year of age, the age groups' edges as dashed lines."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(ages, bins=np.arange(ages.min(), ages.max() + 2) - 0.5, color="tab:blue")
    for low, _ in bounds[1:]:
        ax.axvline(low - 0.5, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel("age (years)")
    ax.set_ylabel("images")
    ax.set_title("Ages; dashed lines: age-group edges")
    save_figure(fig, path)
