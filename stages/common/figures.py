"""Matplotlib without a display, and PNGs written atomically and reproducibly."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # stages run headless, on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

from stages.common.files import atomic_path  # noqa: E402


def save_figure(figure: plt.Figure, path: Path) -> None:
    """Write `figure` as a PNG (no software-version stamp, so reruns give the same bytes) and close it."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80, metadata={"Software": None})
    plt.close(figure)
