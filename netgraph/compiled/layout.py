"""Arrays as the vectors compiled kernels loop over: in the memory order of a reference array.

A compiled elementwise kernel takes 1-D contiguous arrays. An array of any shape that lies in
memory as one dense block, in whatever order of its axes (the batch-last layout of a
convolution's output, a transposed matrix), is such a vector without a copy, read in the order
of its memory; arrays of the same shape and the same layout are then read in step.

Example:
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3).T          # transposed: dense, axes in reverse order
    >>> order = memory_order(a)
    >>> order, flat(a, order).tolist(), np.shares_memory(flat(a, order), a)
    ((1, 0), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["element_strides", "empty_in_order", "flat", "is_flat", "memory_order", "memory_span"]


def element_strides(array: np.ndarray) -> tuple[int, ...] | None:
    """``array``'s strides in elements, or None where one is negative or not a whole element.

    Example:
        >>> element_strides(np.zeros((3, 4))[:, 1:3]), element_strides(np.zeros(4)[::-1])
        ((4, 1), None)
    """
    item = array.itemsize
    if any(s < 0 or s % item for s in array.strides):
        return None
    return tuple(s // item for s in array.strides)


def memory_span(array: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """A 1-D view of the memory ``array`` spans, from its first element, and its strides in elements:
    what a kernel that walks an array by its strides indexes. ``array`` must have non-negative
    strides in whole elements (every array netgraph's layers make has them).

    Example:
        >>> values, strides = memory_span(np.arange(12.0).reshape(3, 4)[:, 1:3])
        >>> values.size, strides
        (10, (4, 1))
    """
    strides = element_strides(array)
    if strides is None:
        raise ValueError(f"memory_span: needs non-negative strides in whole elements, got {array.strides}")
    in_memory = array.transpose(sorted(range(array.ndim), key=lambda axis: -strides[axis]))
    if in_memory.flags.c_contiguous:  # dense: a plain view (as_strided costs some 6 µs a call)
        return in_memory.reshape(-1), strides
    span = 1 + sum((n - 1) * s for n, s in zip(array.shape, strides)) if array.size else 0
    view = np.lib.stride_tricks.as_strided(array, (span,), (array.itemsize,), writeable=array.flags.writeable)
    return view, strides


def memory_order(reference: np.ndarray) -> tuple[int, ...]:
    """The axes of ``reference``, outermost first, as it lies in memory where it is one dense block
    (strides all positive); else C's order (arrays are then copied into it by :func:`flat`).

    Example:
        >>> memory_order(np.zeros((2, 3, 4)).transpose(2, 0, 1)), memory_order(np.zeros((4, 4))[:, ::2])
        ((1, 2, 0), (0, 1))
    """
    if reference.flags.c_contiguous:
        return tuple(range(reference.ndim))
    order = tuple(sorted(range(reference.ndim), key=lambda axis: -reference.strides[axis]))
    return order if reference.transpose(order).flags.c_contiguous else tuple(range(reference.ndim))


def is_flat(array: np.ndarray, order: tuple[int, ...]) -> bool:
    """Whether ``array`` lies in memory as one dense block in the axis order ``order``
    (so :func:`flat` is a view of it).

    Example:
        >>> is_flat(np.zeros((2, 3)), (0, 1)), is_flat(np.zeros((2, 3)), (1, 0))
        (True, False)
    """
    return array.transpose(order).flags.c_contiguous


def flat(array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """``array``'s elements as one contiguous vector, its axes taken in ``order``: a view where it
    lies so in memory (:func:`is_flat`), else a copy.

    Example:
        >>> flat(np.arange(4.0).reshape(2, 2), (1, 0)).tolist()
        [0.0, 2.0, 1.0, 3.0]
    """
    return np.ascontiguousarray(array.transpose(order)).reshape(-1)


def empty_in_order(shape: tuple[int, ...], dtype: np.dtype, order: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A new array of ``shape`` that lies in memory with its axes in ``order``, and its elements as a
    vector in that order (a view).

    Example:
        >>> out, vector = empty_in_order((2, 3), np.float64, (1, 0))
        >>> vector[:] = np.arange(6)
        >>> out.tolist()
        [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
    """
    block = np.empty([shape[axis] for axis in order], dtype)
    if order == tuple(range(len(order))):
        return block, block.reshape(-1)
    inverse = [0] * len(order)
    for position, axis in enumerate(order):
        inverse[axis] = position
    return block.transpose(inverse), block.reshape(-1)
