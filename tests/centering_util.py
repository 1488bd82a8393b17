"""Checks shared by the centring tests of the purchase models and of Gamma-Gamma
(both take the pilot and the mass-matrix rule of clvlab.models.centering)."""

from __future__ import annotations

from typing import Any


def forbid_pilot(monkeypatch: Any, cls: type) -> None:
    """Make any pilot fit (``_segment_estimates``) of ``cls`` fail the test."""

    def no_pilot(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pilot run")

    monkeypatch.setattr(cls, "_segment_estimates", no_pilot)


def assert_mass_matrix_rule(m: Any, link_params: tuple[str, ...]) -> None:
    """A fitted-state model with a non-centred segment left keeps nutpie's diagonal mass matrix;
    with every segment of every parameter centred it adapts a low-rank one (``m`` is changed)."""
    assert m._nutpie_adaptation() == "diag"
    m.centered_ = {k: list(m.segments_) for k in link_params}
    assert m._nutpie_adaptation() == "low_rank"
