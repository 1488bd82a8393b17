"""MCMC diagnostics: per-parameter R-hat and bulk / tail ESS, divergences and BFMI (ArviZ 1.x),
the thresholds a fit is checked against (a :class:`~clvlab.errors.ConvergenceWarning`), and
:class:`Convergence`, the one record of a fit's diagnostics and its one formatter."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

RHAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3


@dataclasses.dataclass(frozen=True)
class Convergence:
    """Sampler diagnostics of one NUTS fit (``convergence_`` of a fitted model).

    Attributes
    ----------
    max_r_hat, min_ess_bulk, min_ess_tail : float
        The worst rank-normalised R-hat and bulk / tail ESS over the checked parameters.
    divergences : int
        Divergent transitions after warm-up, all chains.
    bfmi : tuple of float
        Energy BFMI per chain.
    chains, draws : int
        Chains and kept draws per chain.
    worst_r_hat, worst_ess_bulk, worst_ess_tail : str
        The parameter element behind each worst value, e.g. ``"kappa_sigma"`` or ``"r[1997-W02]"``
        ("" when not known: a model saved before they were recorded).
    """

    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    bfmi: tuple[float, ...]
    chains: int
    draws: int
    worst_r_hat: str = ""
    worst_ess_bulk: str = ""
    worst_ess_tail: str = ""

    @property
    def n_draws(self) -> int:
        """Kept draws over all chains."""
        return self.chains * self.draws

    @property
    def min_bfmi(self) -> float:
        """The lowest chain's BFMI (NaN without energy statistics)."""
        return min(self.bfmi) if self.bfmi else math.nan

    def problems(self) -> list[str]:
        """The thresholds crossed, in words (empty when the fit looks fine)."""
        out = []
        if self.max_r_hat > RHAT_MAX:
            out.append(f"max R-hat {self.max_r_hat:.4f} > {RHAT_MAX}")
        if self.min_ess_bulk < ESS_MIN:
            out.append(f"min bulk ESS {self.min_ess_bulk:.0f} < {ESS_MIN:.0f}")
        if self.min_ess_tail < ESS_MIN:
            out.append(f"min tail ESS {self.min_ess_tail:.0f} < {ESS_MIN:.0f}")
        if self.divergences > 0:
            out.append(f"{self.divergences} divergent transitions")
        low = [b for b in self.bfmi if b < BFMI_MIN]
        if low:
            out.append(f"BFMI {min(low):.2f} < {BFMI_MIN} in {len(low)} chain(s)")
        return out

    def describe(self) -> str:
        """One line for logs, fit output and the report's badge, e.g. "max R-hat 1.003 (kappa_sigma),
        min bulk ESS 1,294 (r[1997-W02]), min tail ESS 1,510 (a), 0 divergences, min BFMI 0.95;
        4 x 1,000 draws"."""

        def at(name: str) -> str:
            return f" ({name})" if name else ""

        return (f"max R-hat {self.max_r_hat:.3f}{at(self.worst_r_hat)}, "
                f"min bulk ESS {self.min_ess_bulk:,.0f}{at(self.worst_ess_bulk)}, "
                f"min tail ESS {self.min_ess_tail:,.0f}{at(self.worst_ess_tail)}, {self.divergences:,} divergences, "
                f"min BFMI {self.min_bfmi:.2f}; {self.chains} x {self.draws:,} draws")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (``metadata.json``)."""
        return {**dataclasses.asdict(self), "bfmi": list(self.bfmi)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> Convergence | None:
        """The record :meth:`to_dict` wrote (None for None: a MAP fit has no sampler diagnostics)."""
        if not values:
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names} | {"bfmi": tuple(values.get("bfmi", ()))})


def convergence_report(idata: xr.DataTree, var_names: Sequence[str]) -> tuple[pd.DataFrame, Convergence]:
    """Per-parameter R-hat and bulk/tail ESS (tidy) plus the fit's :class:`Convergence`."""
    import arviz as az

    post = idata["posterior"].to_dataset()
    names = [v for v in var_names if v in post.data_vars]
    rhat = _as_dataset(az.rhat(idata, var_names=names), "posterior")
    ess_b = _as_dataset(az.ess(idata, var_names=names, method="bulk"), "posterior")
    ess_t = _as_dataset(az.ess(idata, var_names=names, method="tail"), "posterior")
    rows = []
    for v in names:
        r_v, b_v, t_v = (np.atleast_1d(ds[v].values).ravel() for ds in (rhat, ess_b, ess_t))
        labels = _element_labels(post[v])
        for i, lab in enumerate(labels):
            rows.append(dict(parameter=v, element=lab, r_hat=r_v[i], ess_bulk=b_v[i], ess_tail=t_v[i]))
    table = pd.DataFrame(rows)
    stats = idata["sample_stats"].to_dataset() if "sample_stats" in idata.children else None
    n_div = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
    bfmi: list[float] = []
    if stats is not None and "energy" in stats:
        bfmi = [float(v) for v in np.atleast_1d(_as_dataset(az.bfmi(idata), "sample_stats")["energy"].values)]
    worst = dict.fromkeys(("r_hat", "ess_bulk", "ess_tail"), "")
    values = dict.fromkeys(worst, math.nan)
    for col, pick in (("r_hat", "idxmax"), ("ess_bulk", "idxmin"), ("ess_tail", "idxmin")):
        if len(table) and table[col].notna().any():  # R-hat of one chain is NaN
            row = table.loc[getattr(table[col], pick)()]
            values[col] = float(row[col])
            worst[col] = f"{row['parameter']}[{row['element']}]" if str(row["element"]) else str(row["parameter"])
    summary = Convergence(
        max_r_hat=values["r_hat"], min_ess_bulk=values["ess_bulk"], min_ess_tail=values["ess_tail"],
        divergences=n_div, bfmi=tuple(bfmi), chains=int(post.sizes["chain"]), draws=int(post.sizes["draw"]),
        worst_r_hat=worst["r_hat"], worst_ess_bulk=worst["ess_bulk"], worst_ess_tail=worst["ess_tail"],
    )  # fmt: skip
    return table, summary


def _as_dataset(obj: Any, group: str) -> xr.Dataset:
    """ArviZ 1.x returns a DataTree node (or the whole tree); normalise to a Dataset."""
    if isinstance(obj, xr.DataTree):
        if group in obj.children:
            obj = obj[group]
        return obj.to_dataset()
    return obj


def _element_labels(da: xr.DataArray) -> list[str]:
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if not dims:
        return [""]
    idx = pd.MultiIndex.from_product([da[d].values for d in dims]) if len(dims) > 1 else da[dims[0]].values
    return [",".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in idx]
