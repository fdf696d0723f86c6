"""Traffic weights shared by the targets that split traffic between versions."""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["rescale"]


def rescale(weights: Mapping[str, int], total: int) -> dict[str, int]:
    """``weights`` scaled to add up to ``total`` (largest remainders get the rest).

    Examples
    --------
    >>> rescale({"a": 50, "b": 50}, 90)
    {'a': 45, 'b': 45}
    >>> rescale({"a": 1, "b": 1, "c": 1}, 100)
    {'a': 34, 'b': 33, 'c': 33}
    """
    current = sum(weights.values())
    if current == 0:
        return dict.fromkeys(weights, 0)
    exact = {k: w * total / current for k, w in weights.items()}
    result = {k: math.floor(x) for k, x in exact.items()}
    short = total - sum(result.values())
    for key in sorted(exact, key=lambda k: result[k] - exact[k])[:short]:
        result[key] += 1
    return result
