"""Time units. Durations are measured in days and divided by the unit's length (design.md)."""

from __future__ import annotations

from .errors import ClvlabInputError

UNIT_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0}


def unit_days(time_unit: str, arg: str = "time_unit") -> float:
    """Length of ``time_unit`` ("D", "W" or "M") in days; ``arg`` names the argument in the error."""
    try:
        return UNIT_DAYS[time_unit]
    except (KeyError, TypeError):
        raise ClvlabInputError(f"{arg}={time_unit!r}: expected one of {sorted(UNIT_DAYS)}", what="argument") from None
