"""What the CLV engine needs of each purchase model: its parameters, B(x, T) and P(alive).

For every purchase model E[Y(t) | x, t_x, T] = N(x, T, t) P(alive | x, t_x, T), with N the
expectation given alive at T, which does not depend on t_x. So the engine's factorisation
CLV = m E[M] B(x, T) P(alive) (:mod:`clvlab.clv.math`) holds for all three:

============  ========================================  =========================================
model         N (alive at T)                            P(alive)
============  ========================================  =========================================
BG/NBD        FHL 2005 eq. 10 numerator (2F1)           1/D; 1 at x = 0
MBG/NBD       BG/NBD's numerator at b + 1               1/D of BG/NBD at b + 1, for every x
Pareto/NBD    (r+x)/(alpha+T) E[(1 - e^-mu t)/mu]       Fader & Hardie 2005 note eq. 18
============  ========================================  =========================================

(:mod:`clvlab.models.mbgnbd_math` shows why MBG/NBD's log(D - 1) = a/(b+x) ... is BG/NBD's
a/(b'+x-1) at b' = b + 1, x = 0 included.) A :class:`PurchaseFamily` holds these as pure
functions over one segment's (draws,) parameter vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ClvlabInputError
from ..models import bgnbd_math as bm
from ..models import mbgnbd_math as mb
from ..models import pareto_nbd_math as pm
from .math import discounted_purchases, inv_d_factored, pattern_table

__all__ = ["FAMILIES", "PurchaseFamily", "family_of"]

Params = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class PurchaseFamily:
    """One purchase model, as the CLV engine sees it.

    Parameters
    ----------
    name : str
        The estimator's ``model_name``.
    params : tuple of str
        Population parameters, in the math's order.
    table : callable
        ``table(params, xs, Ts, *, horizon, period_length, discount_rate)`` -> B per pattern,
        (patterns, draws); ``params`` are (draws,) arrays.
    alive : callable
        ``alive(params, px, pT, pat, x, t_x)`` -> P(alive) per customer, (customers, draws):
        ``px``, ``pT`` (patterns, 1) and ``pat`` the pattern of each customer.
    alive_at_zero : bool
        P(alive) = 1 for customers with no repeat purchase (so ``alive`` runs on x > 0 only).
    dropout : callable
        ``dropout(values, scale)`` -> parameter values with the mean dropout scaled by ``scale``.
    purchases_new : callable
        ``purchases_new(*params, t)`` -> E[X(t)], a new customer's expected repeat purchases by
        time t after the first (FHL 2005 eq. 9 for BG/NBD); broadcast.
    """

    name: str
    params: tuple[str, ...]
    table: Callable[..., np.ndarray]
    alive: Callable[..., np.ndarray]
    alive_at_zero: bool
    dropout: Callable[[dict[str, np.ndarray], Any], dict[str, np.ndarray]]
    purchases_new: Callable[..., np.ndarray]


def _bg_table(params: Params, xs: np.ndarray, Ts: np.ndarray, **kw: Any) -> np.ndarray:
    return pattern_table(*params, xs, Ts, **kw)


def _bg_alive(
    params: Params, px: np.ndarray, pT: np.ndarray, pat: np.ndarray, x: np.ndarray, t_x: np.ndarray
) -> np.ndarray:
    return inv_d_factored(*params, px, pT, pat, t_x)


def _shift_b(params: Params) -> Params:
    r, alpha, a, b = params
    return r, alpha, a, b + 1.0


def _mbg_table(params: Params, xs: np.ndarray, Ts: np.ndarray, **kw: Any) -> np.ndarray:
    return pattern_table(*_shift_b(params), xs, Ts, **kw)


def _mbg_alive(
    params: Params, px: np.ndarray, pT: np.ndarray, pat: np.ndarray, x: np.ndarray, t_x: np.ndarray
) -> np.ndarray:
    """BG/NBD's factored 1/D at b + 1 for x > 0; a/b ((alpha+T)/alpha)^r per pattern at x = 0
    (BG/NBD's log_ratio is clamped at x = 1 there)."""
    out = np.empty((len(pat), len(params[0])))
    zero = x == 0
    if (~zero).any():
        out[~zero] = inv_d_factored(*_shift_b(params), px, pT, pat[~zero], t_x[~zero])
    if zero.any():
        up, inv = np.unique(pat[zero], return_inverse=True)
        p = tuple(v[None, :] for v in params)
        out[zero] = mb.p_alive(*p, 0.0, 0.0, pT[up])[inv]
    return out


def _phi_dropout(values: dict[str, np.ndarray], scale: Any) -> dict[str, np.ndarray]:
    """phi = a/(a+b) -> scale * phi, kappa = a+b kept (the mean dropout probability per purchase)."""
    a, b = values["a"], values["b"]
    kappa = a + b
    phi = np.asarray(scale * a / kappa)
    if np.any(phi <= 0) or np.any(phi >= 1):
        raise ClvlabInputError(f"dropout scale {scale!r} moves phi = a/(a+b) outside (0, 1)", what="argument")
    return {**values, "a": phi * kappa, "b": (1.0 - phi) * kappa}


def _pareto_table(params: Params, xs: np.ndarray, Ts: np.ndarray, **kw: Any) -> np.ndarray:
    p = tuple(v[None, :] for v in params)
    return discounted_purchases(*p, xs[:, None], Ts[:, None], numerator=pm.expected_purchases_numerator, **kw)


def _pareto_alive(
    params: Params, px: np.ndarray, pT: np.ndarray, pat: np.ndarray, x: np.ndarray, t_x: np.ndarray
) -> np.ndarray:
    """P(alive) on unique (pattern, t_x) pairs, expanded to customers."""
    key = pat.astype(np.int64) * (len(t_x) + 1)
    utx, itx = np.unique(t_x, return_inverse=True)
    ukey, inv = np.unique(key + itx, return_inverse=True)
    up, ut = ukey // (len(t_x) + 1), utx[ukey % (len(t_x) + 1)]
    p = tuple(v[None, :] for v in params)
    out = pm.p_alive(*p, px[up], ut[:, None], pT[up])
    return out[inv]


def _rate_dropout(values: dict[str, np.ndarray], scale: Any) -> dict[str, np.ndarray]:
    """Mean dropout rate s/beta -> scale * s/beta (beta / scale; the shape s kept)."""
    scale = np.asarray(scale, dtype=float)
    if np.any(scale <= 0):
        raise ClvlabInputError(f"dropout scale {scale!r}: expected > 0", what="argument")
    return {**values, "beta": values["beta"] / scale}


FAMILIES: dict[str, PurchaseFamily] = {
    "bgnbd": PurchaseFamily(
        "bgnbd", ("r", "alpha", "a", "b"), _bg_table, _bg_alive, True, _phi_dropout, bm.expected_purchases_new
    ),  # fmt: skip
    "mbgnbd": PurchaseFamily(
        "mbgnbd", ("r", "alpha", "a", "b"), _mbg_table, _mbg_alive, False, _phi_dropout, mb.expected_purchases_new
    ),  # fmt: skip
    "pareto_nbd": PurchaseFamily(
        "pareto_nbd",
        ("r", "alpha", "s", "beta"),
        _pareto_table,
        _pareto_alive,
        False,
        _rate_dropout,
        pm.expected_purchases_new,
    ),  # fmt: skip
}
"""The purchase models the CLV engine values, by ``model_name``."""


def family_of(source: Any, model: str | None = None) -> PurchaseFamily:
    """The :class:`PurchaseFamily` of a purchase model (its ``model_name``), of draws carrying
    a ``model``, or named by ``model`` (default "bgnbd" for bare parameters).

    Raises ClvlabInputError when ``model`` is unknown or contradicts the fitted model.
    """
    fitted = getattr(source, "model_name", None) or getattr(source, "model", None)
    fitted = fitted if isinstance(fitted, str) else None
    if model is not None and fitted is not None and model != fitted:
        raise ClvlabInputError(f"model={model!r} but the purchase model is a {fitted!r}", what="argument")
    name = model or fitted or "bgnbd"
    if name not in FAMILIES:
        raise ClvlabInputError(f"purchase model {name!r}: the CLV engine values {sorted(FAMILIES)}", what="argument")
    return FAMILIES[name]
