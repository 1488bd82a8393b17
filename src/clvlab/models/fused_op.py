"""The pytensor Op shape shared by the fused likelihood kernels (BG/NBD, Pareto/NBD).

A fused kernel takes N per-group parameter vectors and constant pattern data and returns the
weighted log-likelihood total and its gradient with respect to each parameter vector, computed
in one pass. :class:`FusedLoglik` wraps such a kernel: the first output is differentiable (its
pullback hands the kernel's gradient outputs to pytensor's autodiff, so the hierarchy above it
stays ordinary PyMC code); the gradient outputs themselves are not (no Hessian).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = ["FusedLoglik"]


class FusedLoglik(Op):
    """Base Op: inputs are ``n_params`` float64 vectors then the data vectors of ``data_kinds``
    (dtypes); outputs the scalar total and one gradient vector per parameter. A subclass sets the
    class attributes and :meth:`kernel` (a numba function with the same inputs and outputs)."""

    __props__ = ()
    n_params: ClassVar[int] = 0
    data_kinds: ClassVar[tuple[str, ...]] = ()

    @staticmethod
    def kernel(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def make_node(self, *inputs: Any) -> Apply:
        name, n_in = type(self).__name__, self.n_params + len(self.data_kinds)
        if len(inputs) != n_in:
            raise TypeError(f"{name} takes {n_in} inputs, got {len(inputs)}")
        params = [pt.as_tensor_variable(v).astype("float64") for v in inputs[: self.n_params]]
        data = [pt.as_tensor_variable(v).astype(k) for v, k in zip(inputs[self.n_params :], self.data_kinds, strict=True)]
        for v in [*params, *data]:
            if v.ndim != 1:
                raise TypeError(f"{name} inputs must be vectors, got ndim={v.ndim}")
        return Apply(self, [*params, *data], [pt.dscalar("loglik")] + [pt.dvector() for _ in params])

    def perform(self, node: Apply, inputs: list[np.ndarray], output_storage: list[list[Any]]) -> None:
        for store, value in zip(output_storage, self.kernel(*inputs), strict=True):
            store[0] = value

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        n_out = len(node.outputs)
        return [[True] * n_out] * self.n_params + [[False] * n_out] * len(self.data_kinds)

    def pullback(self, inputs: list[Any], outputs: list[Any], output_grads: list[Any]) -> list[Any]:
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            raise NotImplementedError(f"{type(self).__name__}: the gradient outputs cannot be differentiated (no Hessian)")
        g = output_grads[0]
        return [g * out for out in outputs[1:]] + [disconnected_type() for _ in self.data_kinds]
