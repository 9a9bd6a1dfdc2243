"""Plots of the hyperspherical energy and orthogonality logged in training.

Needs matplotlib, an optional dependency: `pip install keras_opt[plot]`.
"""

import csv
import math
import os

__all__ = ["plot_training_dynamics"]

_EXTRA_HINT = (
    "keras_opt.plot needs matplotlib, which is an optional dependency. "
    "Install it with `pip install keras_opt[plot]` (or `pip install "
    "matplotlib`)."
)


def plot_training_dynamics(history, path, title=None):
    """Draws per-layer energy and orthogonality over training into a PNG.

    This is the paper's "training dynamics of hyperspherical energy" figure:
    one line per layer for every `energy/<layer>` key written by
    `keras_opt.callbacks.EnergyMonitor`, and, in a second panel with a log
    scale, every `orthogonality/<layer>` key written by `OrthogonalityMonitor`.
    It uses matplotlib's object-oriented API with the Agg canvas, so it
    works without a display and leaves pyplot's global state alone.

    Args:
        history: A `keras.callbacks.History` (what `fit` returns), its
            `.history` dict, or the path of a `keras.callbacks.CSVLogger`
            file.
        path: Where to write the PNG.
        title: Optional figure title.

    Returns:
        `path`.

    Example:

    >>> history = model.fit(
    ...     x, y, epochs=5, callbacks=[keras_opt.callbacks.EnergyMonitor()]
    ... )  # doctest: +SKIP
    >>> keras_opt.plot.plot_training_dynamics(
    ...     history, "energy.png"
    ... )  # doctest: +SKIP
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(_EXTRA_HINT) from error

    series, epochs = _read_history(history)
    energy = {k: v for k, v in series.items() if k.startswith("energy/")}
    orthogonality = {
        k: v for k, v in series.items() if k.startswith("orthogonality/")
    }
    if not energy and not orthogonality:
        raise ValueError(
            "Invalid value for argument `history`. Expected keys starting "
            "with 'energy/' or 'orthogonality/', as written by "
            "keras_opt.callbacks.EnergyMonitor and OrthogonalityMonitor. "
            f"Received keys: {sorted(series)}"
        )
    panels = [(energy, "hyperspherical energy", "linear")] if energy else []
    if orthogonality:
        panels.append((orthogonality, "max |RᵀR − I|", "log"))

    figure = Figure(figsize=(6.4, 3.2 * len(panels)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for axis, (curves, label, scale) in zip(axes, panels):
        for key in sorted(curves):
            values = curves[key]
            axis.plot(
                epochs[: len(values)],
                values,
                marker="o",
                markersize=3,
                label=key.split("/", 1)[1],
            )
        if scale == "log" and any(
            value > 0 for values in curves.values() for value in values
        ):
            axis.set_yscale("log")
        axis.set_ylabel(label)
        axis.set_xlabel("epoch")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.savefig(path, format="png", dpi=100)
    return path


def _read_history(history):
    """Returns `({key: [float, ...]}, [epoch, ...])` with 1-based epochs."""
    if isinstance(history, (str, os.PathLike)):
        with open(history, newline="") as file:
            rows = list(csv.DictReader(file))
        if not rows:
            raise ValueError(
                "Invalid value for argument `history`. The CSV file "
                f"{history!r} has no rows."
            )
        series = {
            key: [_to_float(row[key]) for row in rows]
            for key in rows[0]
            if key != "epoch"
        }
        if "epoch" in rows[0]:
            epochs = [int(float(row["epoch"])) + 1 for row in rows]
        else:
            epochs = list(range(1, len(rows) + 1))
        return series, epochs
    series = getattr(history, "history", history)
    if not isinstance(series, dict):
        raise TypeError(
            "Invalid value for argument `history`. Expected a "
            "keras.callbacks.History, a dict of lists or a CSV path. "
            f"Received: history={history!r}"
        )
    series = {key: [float(v) for v in vals] for key, vals in series.items()}
    length = max((len(values) for values in series.values()), default=0)
    epochs = getattr(history, "epoch", None) or list(range(length))
    return series, [epoch + 1 for epoch in epochs]


def _to_float(text):
    try:
        return float(text)
    except ValueError:
        return math.nan
