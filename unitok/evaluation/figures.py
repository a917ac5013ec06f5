"""PNG figures of an evaluation (matplotlib, Agg backend): reconstruction grids, codebook usage, rate–distortion,
spectrograms."""

from pathlib import Path

import numpy as np

from .extras import require


def _pyplot():
    matplotlib = require("matplotlib", "eval-image", "matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path, title: str) -> Path:
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reconstruction_grid(rows: list[list[np.ndarray]], column_titles: list[str], path: Path,
                        row_titles: list[str] | None = None, title: str = "") -> Path:
    """Images (HWC uint8) in a grid: one row per item, first column the original."""
    plt = _pyplot()
    n_rows, n_cols = len(rows), len(rows[0])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 1.9 * n_rows + 0.5), squeeze=False)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            axis = axes[r][c]
            axis.imshow(image, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if r == 0:
                axis.set_title(column_titles[c], fontsize=9)
            if c == 0 and row_titles:
                axis.set_ylabel(row_titles[r], fontsize=8)
    return _save(plt, fig, path, title)


def codebook_usage(histogram, codebook_size: int, perplexity: float, path: Path, title: str = "") -> Path:
    """Rank–frequency plot of code usage (log scale) with the ideal uniform level and the perplexity."""
    plt = _pyplot()
    counts = np.sort(np.asarray(histogram, dtype=np.float64))[::-1]
    used = counts[counts > 0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(np.arange(1, len(used) + 1), used / counts.sum(), lw=1.2, marker="o" if len(used) <= 64 else None, ms=4)
    left.axhline(1 / codebook_size, color="grey", ls="--", lw=1, label=f"uniform over {codebook_size:,} codes")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("code rank")
    left.set_ylabel("frequency")
    left.set_title(f"{len(used):,} of {codebook_size:,} codes used; perplexity {perplexity:,.1f}", fontsize=9)
    left.legend(fontsize=8)
    right.hist(np.log10(used), bins=40, color="tab:orange")
    right.set_xlabel("log10(count) of used codes")
    right.set_ylabel("number of codes")
    return _save(plt, fig, path, title)


def rate_distortion(curves: dict[str, dict[str, list[tuple[float, float]]]], path: Path, x_label: str = "bits per pixel",
                    title: str = "") -> Path:
    """One panel per metric; `curves[label][metric] = [(rate, value), ...]` (several models/labels per panel)."""
    plt = _pyplot()
    metrics = sorted({m for per_label in curves.values() for m in per_label})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for label, per_label in curves.items():
            points = sorted(per_label.get(metric, []))
            if points:
                axis.plot(*zip(*points), marker="o", ms=3.5, lw=1.4, label=label)
        axis.set_xscale("log")
        axis.set_xlabel(x_label)
        axis.set_title(metric, fontsize=10)
        axis.grid(alpha=0.3)
    if any(axis.get_legend_handles_labels()[0] for axis in axes[0]):
        axes[0][0].legend(fontsize=8)
    return _save(plt, fig, path, title)


def spectrograms(reference: np.ndarray, estimate: np.ndarray, path: Path, title: str = "",
                 labels: tuple[str, str] = ("reference", "reconstruction")) -> Path:
    """Log-mel (or any 2D) spectrograms, `(bins, frames)`, stacked for comparison on one colour scale."""
    plt = _pyplot()
    low, high = min(reference.min(), estimate.min()), max(reference.max(), estimate.max())
    fig, axes = plt.subplots(2, 1, figsize=(8, 4.6), sharex=True)
    for axis, spec, label in zip(axes, (reference, estimate), labels):
        image = axis.imshow(spec, origin="lower", aspect="auto", vmin=low, vmax=high, cmap="magma")
        axis.set_ylabel(f"{label}\nmel bin")
    axes[-1].set_xlabel("frame")
    fig.colorbar(image, ax=axes, shrink=0.8, label="log power")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["reconstruction_grid", "codebook_usage", "rate_distortion", "spectrograms"]
