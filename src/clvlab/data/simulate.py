"""Simulated transaction logs with known ground truth (BG/NBD, MBG/NBD or Pareto/NBD + Gamma-Gamma, by segment).

Process per customer (``process="bgnbd"``, Fader, Hardie & Lee 2005, "Counting your customers
the easy way"):

* first purchase on a day ``d0`` drawn uniformly from the first ``acquisition_days`` days
  after ``start``;
* ``lam ~ Gamma(r, rate=alpha)`` (purchases per time unit), ``p_drop ~ Beta(a, b)``;
* repeat purchases follow a Poisson process with rate ``lam`` from the first purchase; after
  each *repeat* purchase the customer drops out with probability ``p_drop`` (never right
  after the first purchase), so the number of repeat purchases before dropout
  ``J ~ Geometric(p_drop)`` on {1, 2, ...} and the dropout happens *at* the J-th one;
* every transaction (first purchase included) spends ``z ~ Gamma(shape=p, rate=nu)``
  with ``nu ~ Gamma(q, rate=gamma)`` per customer (Colombo & Jiang 1999).

``process="mbgnbd"`` (Batislam et al. 2007): the customer may also drop out right after the
first purchase, so the repeat purchases before dropout are ``J - 1`` with ``J ~ Geometric(p_drop)``
(``dropout_date`` is then the first purchase's day). ``process="pareto_nbd"`` (Schmittlein et
al. 1987): ``mu ~ Gamma(s, rate=beta)``, the lifetime after the first purchase is
``Exponential(mu)`` and the customer buys at rate ``lam`` until then (``dropout_date`` is the day
of death); a purchase moved to a free day (below) may land up to a few days after it.

Day resolution, made consistent with :func:`clvlab.features.rfm_summary` (which counts
purchase *days* and measures ``T = observation_end - first purchase day``):

* the first purchase is placed at the middle of its day and the window closes at the middle
  of ``observation_end``, so the exposure after the first purchase is exactly
  ``T = observation_end - d0`` days, the T that ``rfm_summary`` reports, and a purchase
  ``s`` days after the first one falls on day ``d0 + round(s)`` (recency error uniform on
  +-half a day, mean zero);
* a customer buys at most once a day: a purchase that falls on a day already taken (the
  first-purchase day or an earlier repeat's day) moves to the next free day (at the end of
  the window, to the last free days before it). The *number* of purchase days is then
  exactly the BG/NBD count ``min(N, J)`` with ``N ~ Poisson(lam * T)``, capped at the T days
  available (a cap that only binds at rates near one purchase a day).

Flooring continuous times to days instead, as an earlier version did, merged purchases
falling on one day (1.3-1.6% of repeat purchases at CDNOW-like rates, 4% at 26 purchases a
year), which put the BG/NBD maximum-likelihood ``alpha`` 4-8% above the truth; measuring T
half a day short of the exposure mattered little (0.1%). Moving a collision to the next
free day lengthens recency a little: the MLE of ``alpha`` moves +0.1% at CDNOW-like rates
and +0.8% at 26 purchases a year (``tests/test_simulate.py``,
``test_pooled_mle_recovers_truth_from_rfm``).

Vectorised exactly: with ``N ~ Poisson(lam * T)`` events in the window, the customer
shows ``K = min(N, J)`` repeat purchases, and their times are the K smallest of N uniform
order statistics, drawn as ``T * S_k / (S_K + R)`` with ``S_k`` the cumulative sums of K
Exp(1) spacings and ``R ~ Gamma(N + 1 - K)`` the rest of the N + 1 spacings.

The window covers ``observation_days`` calendar days from ``start``;
``observation_end`` is its *last* day (inclusive), as 1998-06-30 is for CDNOW
(``start="1997-01-01"``, ``observation_days=546``).
``dropout_date`` is the day of the purchase at which the customer dropped out (NaT if
still alive at the end of the window).

Default segments are four acquisition channels with parameters stated per *week*;
for another ``time_unit`` their ``alpha`` is rescaled so behaviour in calendar time is
unchanged. User-given ``segments`` are taken as stated, in ``time_unit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd

from clvlab.errors import ClvlabInputError
from clvlab.units import unit_days

__all__ = ["DEFAULT_CAC", "DEFAULT_SEGMENTS", "PROCESSES", "SegmentParams", "Simulation", "simulate"]

PROCESSES = ("bgnbd", "mbgnbd", "pareto_nbd")
_PROCESS_FIELDS = {"bgnbd": ("a", "b"), "mbgnbd": ("a", "b"), "pareto_nbd": ("s", "beta")}


@dataclass(frozen=True)
class SegmentParams:
    """Population parameters of one segment; rates per time unit.

    Purchases: ``lam ~ Gamma(r, rate=alpha)``. Dropout: BG/NBD and MBG/NBD ``p ~ Beta(a, b)``;
    Pareto/NBD ``mu ~ Gamma(s, rate=beta)`` (a and b are then unused, NaN allowed).
    Gamma-Gamma: ``z ~ Gamma(p, rate=nu)``, ``nu ~ Gamma(q, rate=gamma)``.
    """

    r: float
    alpha: float
    a: float = float("nan")
    b: float = float("nan")
    p: float = 6.0
    q: float = 4.0
    gamma: float = 15.0
    s: float = float("nan")
    beta: float = float("nan")


@dataclass
class Simulation:
    """Output of :func:`simulate`.

    ``transactions``: customer_id, date, amount, <segment_col> (raw log, may hold same-day rows).
    ``customers``: customer_id, <segment_col>, first_purchase, lam, p_drop (BG/NBD, MBG/NBD) or
    mu (Pareto/NBD), nu, dropout_date.
    ``truth``: one row per segment (index = segment name): r, alpha, the dropout parameters
    (a, b or s, beta), p, q, gamma, n_customers, cac. ``process``: the purchase process simulated.
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    truth: pd.DataFrame
    time_unit: str
    observation_end: pd.Timestamp
    process: str = "bgnbd"


# Weekly parameters; distinct purchase rates, dropout and spend by channel
# (a != 1 everywhere: E[X(t)] is singular at a = 1).
DEFAULT_SEGMENTS: dict[str, SegmentParams] = {
    "search": SegmentParams(r=0.30, alpha=4.0, a=0.80, b=2.50, p=6.0, q=4.0, gamma=15.0),
    "social": SegmentParams(r=0.20, alpha=5.0, a=1.20, b=2.00, p=5.0, q=3.5, gamma=12.0),
    "email": SegmentParams(r=0.45, alpha=3.5, a=0.60, b=3.00, p=6.0, q=4.5, gamma=20.0),
    "affiliate": SegmentParams(r=0.25, alpha=6.0, a=1.10, b=1.80, p=4.0, q=3.0, gamma=14.0),
}
DEFAULT_CAC: dict[str, float] = {"search": 45.0, "social": 30.0, "email": 12.0, "affiliate": 25.0}
_DEFAULT_UNIT = "W"


def _split_sizes(n_customers: int | Mapping[str, int], names: list[str], problems: list[str]) -> dict[str, int]:
    if isinstance(n_customers, Mapping):
        unknown = sorted(set(n_customers) - set(names))
        absent = [g for g in names if g not in n_customers]
        if unknown:
            problems.append(f"n_customers names unknown segment(s) {unknown}; segments: {names}")
        if absent:
            problems.append(f"n_customers lacks segment(s) {absent}")
        sizes = {g: n_customers.get(g, 0) for g in names}
    else:
        n = int(n_customers)
        base, extra = divmod(n, len(names)) if names else (0, 0)
        sizes = {g: base + (i < extra) for i, g in enumerate(names)}
        if n < len(names):
            problems.append(f"n_customers={n} is fewer than the {len(names)} segments")
            return sizes
    for g, n_g in sizes.items():
        if not isinstance(n_g, (int, np.integer)) or n_g < 1:
            problems.append(f"n_customers[{g!r}]={n_g!r}: expected an integer >= 1")
    return {g: int(n) if isinstance(n, (int, np.integer)) else 0 for g, n in sizes.items()}


def _distinct_days(s: np.ndarray, owner: np.ndarray, block_start: np.ndarray, slack: np.ndarray) -> np.ndarray:
    """Day offsets (>= 1) of repeat purchases at ``s`` days after the first purchase, one a day.

    ``s`` is sorted within each customer's block (``owner``; block i starts at
    ``block_start[i]``). Each purchase goes to ``round(s)``, or to the next free day when that
    is taken (offset 0 is the first purchase): ``d_j = j + max(0, cummax_{i<=j}(round(s_i) - i))``
    for the j-th repeat. ``slack[i] = T_i - k_i`` (>= 0) caps ``d_j - j`` so the last of k
    purchases stays within T, moving a pile-up at the window's end back onto free days.
    """
    if len(s) == 0:
        return np.zeros(0, dtype=np.int64)
    j = np.arange(1, len(s) + 1) - block_start[owner]  # 1-based rank within the customer
    v = np.rint(s).astype(np.int64) - j
    lift = owner.astype(np.int64) * (int(np.abs(v).max()) * 2 + 2)  # keeps the running max inside a block
    v = np.maximum.accumulate(v + lift) - lift
    return j + np.minimum(np.maximum(v, 0), slack[owner])


def simulate(
    segments: Mapping[str, SegmentParams] | None = None,
    n_customers: int | Mapping[str, int] = 1000,
    start: str = "2020-01-01",
    acquisition_days: int = 84,
    observation_days: int = 546,
    time_unit: str = "W",
    segment_col: str = "channel",
    cac: Mapping[str, float] | None = None,
    seed: int = 0,
    process: str = "bgnbd",
) -> Simulation:
    """Simulate a segmented customer base with known purchase-model and Gamma-Gamma truth.

    ``segments=None`` gives the four default channels (``DEFAULT_SEGMENTS``, CAC
    ``DEFAULT_CAC``; BG/NBD and MBG/NBD only). ``n_customers``: an int is split evenly
    (remainder to the first segments); a mapping gives each segment's size. ``cac=None`` uses
    ``DEFAULT_CAC`` where a segment is named there, else NaN. ``process``: one of
    :data:`PROCESSES` (module docstring). Reproducible from ``seed``.

    Parameters
    ----------
    segments : mapping of str to SegmentParams, optional
        Each segment's population parameters (rates per ``time_unit``).
    n_customers : int or mapping of str to int
        Customers in all (split evenly) or per segment.
    start : date-like
        First acquisition day.
    acquisition_days, observation_days : int
        Days over which customers are acquired, and the whole observed span from ``start``.
    time_unit : {"D", "W", "M"}
        Unit of the parameters' rates.
    segment_col : str
        Name of the segment column in the outputs.
    cac : mapping of str to float, optional
        Acquisition cost per customer of each segment.
    seed : int
        Random seed: the same seed gives the same tables.
    process : str
        Purchase process (one of :data:`PROCESSES`).

    Returns
    -------
    Simulation
        The transaction log, the customers with their latent rates and dropout dates, and the
        truth per segment.
    """
    days_per_unit = unit_days(time_unit)
    if segments is None:
        scale = unit_days(_DEFAULT_UNIT) / days_per_unit  # weekly rate -> rate per time_unit
        segments = {g: replace(s, alpha=s.alpha * scale) for g, s in DEFAULT_SEGMENTS.items()}
    names = [str(g) for g in segments]
    problems: list[str] = []
    if process not in PROCESSES:
        problems.append(f"process={process!r}: expected one of {PROCESSES}")
    needed = {"r", "alpha", "p", "q", "gamma", *_PROCESS_FIELDS.get(process, ())}
    if not names:
        problems.append("segments is empty")
    for g, s in segments.items():
        if not isinstance(s, SegmentParams):
            problems.append(f"segments[{g!r}] is {type(s).__name__}, expected SegmentParams")
            continue
        bad = [f.name for f in fields(s) if f.name in needed
               and not (np.isfinite(getattr(s, f.name)) and getattr(s, f.name) > 0)]  # fmt: skip
        if bad:
            problems.append(f"segments[{g!r}]: parameter(s) {bad} must be finite and > 0")
    if not 1 <= acquisition_days <= observation_days:
        problems.append(
            f"acquisition_days={acquisition_days}, observation_days={observation_days}: "
            "expected 1 <= acquisition_days <= observation_days"
        )
    if segment_col in ("customer_id", "date", "amount"):
        problems.append(f"segment_col={segment_col!r} clashes with a transaction column")
    sizes = _split_sizes(n_customers, names, problems)
    cac_map = dict(DEFAULT_CAC if cac is None else cac)
    if cac is not None:
        unknown = sorted(set(cac) - set(names))
        if unknown:
            problems.append(f"cac names unknown segment(s) {unknown}; segments: {names}")
    if problems:
        raise ClvlabInputError(problems, what="simulation settings")

    rng = np.random.default_rng(seed)
    start_ts = pd.Timestamp(start).normalize()
    params = list(segments.values())
    n_seg = np.array([sizes[g] for g in names], dtype=np.int64)
    seg = np.repeat(np.arange(len(names)), n_seg)  # segment code per customer
    n = int(n_seg.sum())

    def per_customer(attr: str) -> np.ndarray:
        return np.array([getattr(s, attr) for s in params], dtype=float)[seg]

    # latent customer traits
    lam = rng.gamma(per_customer("r"), 1.0 / per_customer("alpha"))  # per time unit
    pareto = process == "pareto_nbd"
    if pareto:
        mu = rng.gamma(per_customer("s"), 1.0 / per_customer("beta"))
    else:
        p_drop = rng.beta(per_customer("a"), per_customer("b"))
    nu = rng.gamma(per_customer("q"), 1.0 / per_customer("gamma"))

    # first purchase day and window exposure after it, in days (== the T of rfm_summary)
    d0 = rng.integers(0, acquisition_days, size=n)
    exposure = observation_days - 1 - d0
    if pareto:  # buys at rate lam over min(exposure, lifetime), every event observed
        life_days = rng.exponential(1.0 / mu) * days_per_unit
        active = np.minimum(exposure, life_days)
        n_events = np.minimum(rng.poisson(lam * active / days_per_unit), exposure)
        k = n_events
        dropped = life_days < exposure
    else:
        active = exposure
        n_events = rng.poisson(lam * exposure / days_per_unit)  # repeat-purchase opportunities
        n_events = np.minimum(n_events, exposure)  # at most one purchase a day
        n_until_drop = rng.geometric(p_drop)  # dropout at this purchase (the first one counts under MBG/NBD)
        if process == "mbgnbd":
            n_until_drop = n_until_drop - 1
        k = np.minimum(n_events, n_until_drop)  # repeat purchases observed
        dropped = n_until_drop <= n_events

    # times (days after the first purchase) of the k first of n_events uniform order statistics on (0, exposure)
    total_k = int(k.sum())
    owner = np.repeat(np.arange(n), k)
    gaps = rng.exponential(1.0, size=total_k)
    cum = np.cumsum(gaps)
    ends = np.cumsum(k)
    offset = np.concatenate(([0.0], cum))[ends - k]  # cumulative sum before each customer's block
    s_k = cum - offset[owner]
    s_last = np.zeros(n)
    has = k > 0
    s_last[has] = s_k[ends[has] - 1]
    rest = rng.gamma(n_events - k + 1.0)  # remaining N + 1 - K spacings
    s_repeat = active[owner] * s_k / (s_last + rest)[owner]
    day_repeat = d0[owner] + _distinct_days(s_repeat, owner, ends - k, exposure - k)

    # one row per transaction: first purchase then repeats, in time order per customer
    first_rows = np.arange(n) + np.concatenate(([0], ends[:-1]))  # position of each first purchase
    m = n + total_k
    cust_of_row = np.empty(m, dtype=np.int64)
    is_first = np.zeros(m, dtype=bool)
    is_first[first_rows] = True
    cust_of_row[first_rows] = np.arange(n)
    cust_of_row[~is_first] = owner
    day_row = np.empty(m, dtype=np.int64)
    day_row[first_rows] = d0
    day_row[~is_first] = day_repeat
    shape_row = per_customer("p")[cust_of_row]
    amount = rng.gamma(shape_row, 1.0 / nu[cust_of_row])

    width = max(7, len(str(n)))
    ids = np.array([f"C{i:0{width}d}" for i in range(n)], dtype=object)
    seg_names = np.array(names, dtype=object)
    start_day = np.datetime64(start_ts.date(), "D")

    def to_dates(days: np.ndarray) -> np.ndarray:
        return (start_day + days).astype("datetime64[ns]")

    transactions = pd.DataFrame(
        {
            "customer_id": ids[cust_of_row],
            "date": to_dates(day_row),
            "amount": amount.astype("float64"),
            segment_col: seg_names[seg[cust_of_row]],
        }
    )

    last_day = day_row[first_rows + k]  # day of the last purchase
    if pareto:
        dropout_day = np.where(dropped, d0 + np.floor(life_days + 0.5).astype(np.int64), -1)
    else:
        dropout_day = np.where(dropped, last_day, -1)
    dropout_date = to_dates(dropout_day)
    dropout_date[dropout_day < 0] = np.datetime64("NaT")
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            segment_col: seg_names[seg],
            "first_purchase": to_dates(d0),
            "lam": lam,
            **({"mu": mu} if pareto else {"p_drop": p_drop}),
            "nu": nu,
            "dropout_date": dropout_date,
        }
    )

    truth = pd.DataFrame([asdict(s) for s in params], index=pd.Index(names, name=segment_col))
    truth = truth.drop(columns=[c for c in ("a", "b", "s", "beta") if c not in needed])
    truth["n_customers"] = n_seg
    truth["cac"] = [float(cac_map.get(g, np.nan)) for g in names]

    return Simulation(
        transactions=transactions,
        customers=customers,
        truth=truth,
        time_unit=time_unit,
        observation_end=start_ts + pd.Timedelta(days=observation_days - 1),
        process=process,
    )
