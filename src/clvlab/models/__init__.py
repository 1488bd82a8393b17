"""The Bayesian models: purchase (BG/NBD, MBG/NBD, Pareto/NBD, the NBD baseline), spend, survival."""

from __future__ import annotations

from typing import Any

__all__ = ["purchase_model_class"]


def purchase_model_class(name: str) -> Any:
    """The estimator class of a purchase model by its ``model_name`` (imported on demand).

    Parameters
    ----------
    name : {"bgnbd", "mbgnbd", "pareto_nbd", "nbd"}

    Returns
    -------
    type
    """
    from clvlab.errors import ClvlabInputError

    if name == "bgnbd":
        from clvlab.models.bgnbd import BGNBD as cls
    elif name == "mbgnbd":
        from clvlab.models.mbgnbd import MBGNBD as cls
    elif name == "pareto_nbd":
        from clvlab.models.pareto_nbd import ParetoNBD as cls
    elif name == "nbd":
        from clvlab.models.nbd import NBD as cls
    else:
        raise ClvlabInputError(
            f"purchase model {name!r}: expected one of bgnbd, mbgnbd, pareto_nbd, nbd", what="argument"
        )
    return cls
