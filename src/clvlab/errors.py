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
