"""MCMC diagnostics: per-parameter R-hat and bulk / tail ESS, divergences and BFMI (ArviZ 1.x),
and the thresholds a fit is checked against (a :class:`~clvlab.errors.ConvergenceWarning`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

RHAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3


def convergence_report(idata: xr.DataTree, var_names: Sequence[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-parameter R-hat and bulk/tail ESS (tidy) plus a run summary (divergences, BFMI)."""
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
    summary = dict(
        max_r_hat=float(table["r_hat"].max()) if len(table) else float("nan"),
        min_ess_bulk=float(table["ess_bulk"].min()) if len(table) else float("nan"),
        min_ess_tail=float(table["ess_tail"].min()) if len(table) else float("nan"),
        divergences=n_div,
        bfmi=bfmi,
        chains=int(post.sizes["chain"]),
        draws=int(post.sizes["draw"]),
    )
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


def convergence_problems(summary: dict[str, Any]) -> list[str]:
    """Human-readable list of crossed thresholds (empty if the run looks fine)."""
    out = []
    if summary["max_r_hat"] > RHAT_MAX:
        out.append(f"max R-hat {summary['max_r_hat']:.4f} > {RHAT_MAX}")
    if summary["min_ess_bulk"] < ESS_MIN:
        out.append(f"min bulk ESS {summary['min_ess_bulk']:.0f} < {ESS_MIN:.0f}")
    if summary["min_ess_tail"] < ESS_MIN:
        out.append(f"min tail ESS {summary['min_ess_tail']:.0f} < {ESS_MIN:.0f}")
    if summary["divergences"] > 0:
        out.append(f"{summary['divergences']} divergent transitions")
    low = [b for b in summary["bfmi"] if b < BFMI_MIN]
    if low:
        out.append(f"BFMI {min(low):.2f} < {BFMI_MIN} in {len(low)} chain(s)")
    return out
