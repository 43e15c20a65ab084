"""Matplotlib without a display, and PNGs written reproducibly."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # stages run headless, on servers and in CI
import matplotlib.pyplot as plt


def save_figure(figure: plt.Figure, path: Path) -> None:
    """Write `figure` as a PNG (no software-version stamp, so reruns give the same bytes) and close it."""
    figure.savefig(path, format="png", dpi=80, metadata={"Software": None})
    plt.close(figure)
