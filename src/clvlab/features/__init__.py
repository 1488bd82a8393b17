"""Features in DuckDB SQL: RFM summary, calibration/holdout split, RFM scores, cohorts,
inter-purchase times (and the lapse table, :mod:`clvlab.features.lapse`).

Every function accepts the validated transaction DataFrame, a Parquet/CSV path or a
duckdb relation (see :mod:`clvlab.features._sql`).
"""

from clvlab.features.behaviour import BEHAVIOUR_FEATURES, behaviour_matrix, early_behaviour
from clvlab.features.clusters import BehaviouralSegments
from clvlab.features.cohorts import Cohorts, cohorts, interpurchase_times
from clvlab.features.rfm import HOLDOUT_COLUMNS, RFM_COLUMNS, calibration_holdout, rfm_summary
from clvlab.features.scores import SEGMENT_RULES, SEGMENTS, SegmentRule, rfm_scores

__all__ = [
    "BEHAVIOUR_FEATURES",
    "BehaviouralSegments",
    "HOLDOUT_COLUMNS",
    "RFM_COLUMNS",
    "SEGMENTS",
    "SEGMENT_RULES",
    "Cohorts",
    "SegmentRule",
    "calibration_holdout",
    "behaviour_matrix",
    "cohorts",
    "early_behaviour",
    "interpurchase_times",
    "rfm_scores",
    "rfm_summary",
]
