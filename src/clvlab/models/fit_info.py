"""What a fit was: :class:`FitInfo` (``fit_info_`` of a fitted model) and :class:`MapInfo` (the
optimiser's report of a MAP fit), typed records with one formatter, saved in ``metadata.json``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class MapInfo:
    """The optimiser's report of a ``fit(method="map")`` (scipy L-BFGS-B).

    Attributes
    ----------
    converged : bool
        The optimiser's own success flag.
    message : str
        Its message.
    n_eval, n_iter : int
        Function evaluations and iterations.
    logp : float
        Log posterior density at the mode (constrained parameters, no Jacobian term).
    compile_s, optimise_s : float
        Seconds compiling the logp+gradient function and optimising.
    """

    converged: bool
    message: str
    n_eval: int
    n_iter: int
    logp: float
    compile_s: float
    optimise_s: float


@dataclasses.dataclass(frozen=True)
class FitInfo:
    """The settings and costs of one fit (``fit_info_``).

    Attributes
    ----------
    method : {"nuts", "map"}
    sampler : str or None
        The NUTS implementation (None for MAP).
    chains, draws, tune, seed : int
        As given to ``fit`` (``tune`` resolved to the sampler's default when None was given).
    target_accept : float
        The NUTS target acceptance used (the model's rule when None was given).
    mean_centred : bool
        Covariates and segment effects sampled in the mean-centred form (NUTS, partial pooling).
    nutpie_backend : str or None
        nutpie's compile backend (None for the other samplers).
    device : str
        Where the sampler ran ("cpu", or the JAX device, e.g. "gpu:0 (NVIDIA H100)").
    n_rows : int
        Rows of the validated fit data.
    data_hash : str
        Hash of the fit data.
    build_s, compile_s, fit_s : float
        Seconds building the PyMC model, compiling, and sampling / optimising (compilation included).
    centered : mapping, optional
        Models that choose the parameterisation per segment: for each parameter, the segments
        sampled centred (also ``centered_``).
    centering_s : float, optional
        Seconds of the pilot fit that chose them.
    nutpie_adaptation : str, optional
        nutpie's mass-matrix adaptation ("diag" or "low_rank").
    map : MapInfo, optional
        The optimiser's report (MAP fits).
    """

    method: str
    sampler: str | None
    chains: int
    draws: int
    tune: int
    seed: int
    target_accept: float
    mean_centred: bool
    nutpie_backend: str | None
    device: str
    n_rows: int
    data_hash: str
    build_s: float
    compile_s: float
    fit_s: float
    centered: Mapping[str, list[Any]] | None = None
    centering_s: float | None = None
    nutpie_adaptation: str | None = None
    map: MapInfo | None = None

    def describe(self) -> str:
        """The sampler settings in one line, e.g. "NUTS (nutpie, numba, low_rank), 4 chains x 1,000
        draws after 400 warm-up, target_accept 0.9, seed 0; 21.3 s"."""
        if self.method == "map":
            m = self.map
            state = (
                "" if m is None else f", {'converged' if m.converged else 'NOT converged'} in {m.n_eval} evaluations"
            )
            return f"MAP (L-BFGS-B{state}), seed {self.seed}; {self.fit_s:.1f} s"
        how = ", ".join(str(v) for v in (self.sampler, self.nutpie_backend, self.nutpie_adaptation) if v)
        where = "" if self.device == "cpu" else f" on {self.device}"
        return (f"NUTS ({how}){where}, {self.chains} chains x {self.draws:,} draws after {self.tune:,} warm-up, "
                f"target_accept {self.target_accept:g}, seed {self.seed}; {self.fit_s:.1f} s")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (``metadata.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> FitInfo | None:
        """The record :meth:`to_dict` wrote; also reads the flat ``map_*`` keys of older saves
        (None when there is none)."""
        if not values:
            return None
        values = dict(values)
        names = {f.name for f in dataclasses.fields(cls)}
        map_values = values.pop("map", None) or {k[4:]: values[k] for k in list(values) if k.startswith("map_")}
        kept = {k: v for k, v in values.items() if k in names}
        if map_values:
            map_names = {f.name for f in dataclasses.fields(MapInfo)}
            kept["map"] = MapInfo(**{k: v for k, v in map_values.items() if k in map_names})
        return cls(**kept)
