"""The pytensor Op shape shared by the fused likelihood kernels (BG/NBD, Pareto/NBD).

A fused kernel takes N per-group parameter vectors and constant pattern data and returns the
weighted log-likelihood total and its gradient with respect to each parameter vector, computed
in one pass. :class:`FusedLoglik` wraps such a kernel: the first output is differentiable (its
pullback hands the kernel's gradient outputs to pytensor's autodiff, so the hierarchy above it
stays ordinary PyMC code); the gradient outputs themselves are not (no Hessian).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = ["FusedLoglik", "njit_cached_by_source", "source_hash"]


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


def source_hash(files: Sequence[str | Path]) -> int:
    """48-bit hash of the bytes of ``files`` (a kernel's module and the modules of its callees)."""
    src = b"".join(Path(f).read_bytes() for f in files)
    return int(hashlib.sha256(src).hexdigest()[:12], 16)


def njit_cached_by_source(files: Sequence[str | Path], **njit_kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit`` with an on-disk cache keyed on a hash of ``files``, not on one file's timestamp.

    numba's own cache (``cache=True``) keys a function on its defining file alone, so a cached
    caller keeps running a stale copy of a callee edited in another module (measured: an old,
    unbounded quadrature loop kept running after a fix). This registers the function with
    pytensor's numba cache locator (the one pytensor uses for its generated functions, in
    pytensor's compile directory) under the hash of ``files``, so any edit to the
    kernel or its callees compiles afresh and an unchanged one loads in milliseconds (measured on
    the Pareto/NBD kernel: ~3 s compile per process before). With pytensor's numba cache switched
    off (``config.numba__cache``), the function is compiled per process.
    """
    from pytensor.configdefaults import config
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    key = f"{source_hash(files):x}"

    def decorate(fn: Callable[..., Any]) -> Any:
        cache = bool(config.numba__cache)
        if cache:  # before njit: the dispatcher picks its cache locator when it is created
            CACHED_SRC_FUNCTIONS[fn] = f"src{key}"
        return numba.njit(cache=cache, **njit_kwargs)(fn)

    return decorate
