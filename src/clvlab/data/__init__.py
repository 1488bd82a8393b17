"""Data layer: transaction logs -> validated table, the CDNOW loader, and the simulator.

The validated transaction table (shared contract): ``customer_id`` (str), ``date``
(datetime64[ns], midnight), ``amount`` (float64 >= 0), segment columns (str); one row
per customer-day unless ``aggregate_same_day=False``.
"""

from clvlab.data.cdnow import cdnow_dir, load_cdnow, load_cdnow_with_report, read_cdnow_raw
from clvlab.data.simulate import DEFAULT_CAC, DEFAULT_SEGMENTS, SegmentParams, Simulation, simulate
from clvlab.data.transactions import ValidationReport, load_transactions, pseudonymise_ids

__all__ = [
    "DEFAULT_CAC",
    "DEFAULT_SEGMENTS",
    "SegmentParams",
    "Simulation",
    "ValidationReport",
    "cdnow_dir",
    "load_cdnow",
    "load_cdnow_with_report",
    "load_transactions",
    "pseudonymise_ids",
    "read_cdnow_raw",
    "simulate",
]
