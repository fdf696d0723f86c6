"""Traffic weights shared by the targets that split traffic between versions."""

from __future__ import annotations

import math
from collections.abc import Mapping

from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["check_weight", "pick_weighted", "rescale"]


def check_weight(weight: object, what: str) -> int:
    """``weight`` when it is a whole percentage (0 to 100).

    Examples
    --------
    >>> check_weight(10, "version 'v2'")
    10
    >>> check_weight(101, "version 'v2'")
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: invalid traffic weight 101 for version 'v2'
    Hint: weights are whole percentages from 0 to 100
    """
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise InvalidArgumentError(
            f"invalid traffic weight {weight!r} for {what}",
            hint="weights are whole percentages from 0 to 100",
        )
    return weight


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


def pick_weighted(weights: Mapping[str, int], draw: float) -> str | None:
    """The name a uniform ``draw`` in [0, 1) falls on, each name getting its weight's
    share; ``None`` when every weight is 0.

    Examples
    --------
    >>> pick_weighted({"v1": 90, "v2": 10}, 0.95), pick_weighted({"v1": 0}, 0.5)
    ('v2', None)
    """
    live = [(name, w) for name, w in weights.items() if w > 0]
    point = draw * sum(w for _, w in live)
    for name, weight in live:
        if point < weight:
            return name
        point -= weight
    return live[-1][0] if live else None
