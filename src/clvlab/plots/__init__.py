"""Figures of clvlab: every function takes results and returns a matplotlib Figure (no I/O).

One style
---------
All figures share one matplotlib style, ``clvlab.mplstyle`` (shipped in this package,
path :data:`STYLE_PATH`): fonts readable when a PNG is shown about 800 px wide, constrained
layout, no top/right spines, a colour-blind-friendly colour cycle. Every public figure
function applies it itself, for the time it builds the figure (a ``matplotlib.style.context``
through the :func:`styled` decorator), so importing :mod:`clvlab.plots` changes no global
state and the figures look the same in a notebook, a script or a run report.
:func:`clvlab.report.save_figure` saves under the same style.

To use the style for your own figures::

    from clvlab.plots import use_style
    with use_style():
        fig, ax = plt.subplots()

or ``use_style(globally=True)`` once, e.g. at the top of a notebook.

Intervals
---------
Plots that draw credible intervals of continuous quantities draw HDIs computed with
:mod:`clvlab.stats` and say "HDI" in their labels; intervals of counts are equal-tailed and
labelled "equal-tailed" (:func:`interval_label`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.style

__all__ = ["STYLE_PATH", "category_ticks", "interval_label", "segment_colors", "styled", "use_style"]

STYLE_PATH = Path(__file__).with_name("clvlab.mplstyle")
"""Path of the clvlab matplotlib style file (``matplotlib.style.use(STYLE_PATH)`` works too)."""


def use_style(*, globally: bool = False) -> contextlib.AbstractContextManager[None]:
    """Apply the clvlab matplotlib style.

    Parameters
    ----------
    globally : bool, default False
        False: return a context manager that applies the style inside its ``with`` block
        and restores the previous rcParams afterwards. True: apply the style to the global
        rcParams now (e.g. once in a notebook) and return a no-op context manager.

    Returns
    -------
    context manager

    Examples
    --------
    >>> from clvlab.plots import use_style
    >>> with use_style():
    ...     pass  # figures created here use the clvlab style
    """
    if globally:
        matplotlib.style.use(STYLE_PATH)
        return contextlib.nullcontext()
    return _style_context()


@contextlib.contextmanager
def _style_context() -> Iterator[None]:
    with matplotlib.style.context(STYLE_PATH):
        yield


def styled[F: Callable[..., Any]](func: F) -> F:
    """Decorator: run a figure function under :func:`use_style` (used by every clvlab plot)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with use_style():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def interval_label(prob: float, kind: str = "hdi") -> str:
    """Legend / axis wording of an interval: ``"94% HDI"`` or ``"94% equal-tailed interval"``.

    Parameters
    ----------
    prob : float
        Credible mass in (0, 1).
    kind : {"hdi", "equal-tailed"}
        How the interval was computed (:func:`clvlab.stats.hdi` or
        :func:`clvlab.stats.equal_tailed`).
    """
    pct = f"{100 * prob:.0f}%" if abs(100 * prob - round(100 * prob)) < 1e-9 else f"{100 * prob:g}%"
    if kind == "hdi":
        return f"{pct} HDI"
    if kind == "equal-tailed":
        return f"{pct} equal-tailed interval"
    raise ValueError(f"kind={kind!r}: expected 'hdi' or 'equal-tailed'")


def category_ticks(
    ax: Any,
    positions: Sequence[float],
    labels: Sequence[str],
    *,
    axis: str = "x",
    max_labels: int = 14,
    rotate_above: int = 6,
) -> None:
    """Readable category tick labels: rotated when there are many, thinned when there are too many.

    Parameters
    ----------
    ax : matplotlib Axes
    positions, labels : sequences
        Tick positions and their labels (same length).
    axis : {"x", "y"}
        Which axis; y labels are never rotated.
    max_labels : int
        At most this many labels are shown (every k-th, starting with the first);
        every position keeps a tick mark.
    rotate_above : int
        x labels are rotated by 45 degrees when there are more than this many, or when the
        longest label is longer than 6 characters and there are more than 3.
    """
    positions, labels = list(positions), [str(s) for s in labels]
    n = len(labels)
    step = max(1, -(-n // max_labels))  # ceil(n / max_labels)
    shown = [lab if i % step == 0 else "" for i, lab in enumerate(labels)]
    if axis == "y":
        ax.set_yticks(positions, shown)
        return
    longest = max((len(s) for s in labels), default=0)
    rotate = n > rotate_above or (longest > 6 and n > 3)
    ax.set_xticks(
        positions,
        shown,
        rotation=45 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor" if rotate else "default",
    )


def segment_colors(n: int) -> list[Any]:
    """``n`` distinguishable colours: the style's colour cycle up to its length (10), else a
    sequential colormap (cividis), which suits ordered segments such as cohorts."""
    import matplotlib.pyplot as plt  # colormaps only; no figure is created
    import numpy as np

    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key().get("color", [])
    if n <= len(cycle):
        return list(cycle[:n])
    return [plt.get_cmap("cividis")(v) for v in np.linspace(0.0, 0.92, n)]
