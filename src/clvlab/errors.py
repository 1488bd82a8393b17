"""Exceptions raised by clvlab. All input problems are ``ClvlabInputError``."""

from __future__ import annotations


class ClvlabInputError(ValueError):
    """Bad input: the message lists every problem found (column, example rows, expectation).

    ``problems`` keeps the individual messages so callers and tests can inspect them.
    """

    def __init__(self, problems: list[str] | str, *, what: str = "input"):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {what} ({len(self.problems)} problem(s)):\n{lines}")


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics crossed a threshold (R-hat, ESS, divergences, BFMI)."""


def column_list(value: object, name: str) -> tuple[str, ...]:
    """``value`` as a tuple of column names; a bare string is refused (it would be split into letters).

    Raises
    ------
    ClvlabInputError
        Naming the argument ``name``.
    """
    if isinstance(value, str):
        raise ClvlabInputError(f"{name}={value!r}: expected a list of column names, e.g. [{value!r}]", what="argument")
    try:
        cols = tuple(value)  # type: ignore[call-overload]
    except TypeError:
        raise ClvlabInputError(f"{name}={value!r}: expected a list of column names", what="argument") from None
    bad = [c for c in cols if not isinstance(c, str)]
    if bad:
        raise ClvlabInputError(f"{name}={value!r}: expected column names (text), got {bad[:3]}", what="argument")
    return cols
