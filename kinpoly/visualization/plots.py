"""Evaluation plots (PNG), drawn with matplotlib's Agg canvas and written atomically.

Plain functions from numbers to a file; they use ``matplotlib.figure.Figure`` directly, so they
never touch pyplot's global state or need a display.
"""

from __future__ import annotations

import io
import os

import numpy as np
from matplotlib.figure import Figure

from ..motion.clip import atomic_write_bytes


def _save(fig: Figure, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(path, buf.getvalue())


def plot_per_joint_errors(per_joint: dict[str, np.ndarray], path: str | os.PathLike,
                          title: str = "Per-joint error (root-relative)", unit: str = "mm") -> None:
    """Bar per joint: mean over clips, error bar: standard deviation over clips.

    ``per_joint`` maps a joint name to its per-clip values.
    """
    names = list(per_joint)
    vals = [np.asarray(per_joint[n], dtype=float) for n in names]
    fig = Figure(figsize=(max(6.0, 0.38 * len(names)), 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(names))
    ax.bar(x, [v.mean() for v in vals], yerr=[v.std() for v in vals], capsize=2, color="#4a78b0")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"error ({unit})")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def plot_error_over_time(curves: dict[str, dict[str, np.ndarray]], fps: float | dict[str, float],
                         path: str | os.PathLike, unit: str = "mm") -> None:
    """One panel per clip: each named per-frame error curve against time (s).

    ``curves[clip][label]`` is a (T,) array; ``fps`` is one rate or one per clip.
    """
    fig = Figure(figsize=(8.0, 2.4 * max(1, len(curves))), layout="constrained")
    for i, (clip, series) in enumerate(curves.items()):
        ax = fig.add_subplot(len(curves), 1, i + 1)
        rate = fps[clip] if isinstance(fps, dict) else fps
        for label, y in series.items():
            ax.plot(np.arange(len(y)) / rate, y, label=label, lw=1.0)
        ax.set_title(clip, fontsize=9)
        ax.set_ylabel(f"error ({unit})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    if fig.axes:
        fig.axes[-1].set_xlabel("time (s)")
    _save(fig, path)


def plot_success_per_action(rates: dict[str, float], counts: dict[str, int], path: str | os.PathLike,
                            title: str = "Success per action") -> None:
    """Bar per action of a success rate in [0, 1], annotated with the number of clips."""
    names = list(rates)
    fig = Figure(figsize=(max(4.0, 1.1 * len(names)), 3.5), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(names))
    bars = ax.bar(x, [rates[n] for n in names], color="#5a9e6f")
    for b, n in zip(bars, names):
        top = (b.get_x() + b.get_width() / 2, b.get_height())
        ax.annotate(f"{rates[n]:.2f}\n(n={counts.get(n, 0)})", top, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("success rate")
    ax.set_title(title)
    _save(fig, path)


def plot_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike, *,
                title: str = "", xlabel: str = "", ylabel: str = "", logy: bool = False) -> None:
    """Line per named (x, y) series on one axis, e.g. training curves."""
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for label, (x, y) in curves.items():
        ax.plot(np.asarray(x), np.asarray(y), label=label, lw=1.2)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    _save(fig, path)
