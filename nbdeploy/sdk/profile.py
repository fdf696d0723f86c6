"""The result of a profile as the SDK hands it out: a report that renders in a notebook."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from nbdeploy.profiling import ProfileResult
from nbdeploy.sdk.rendering import mimebundle

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["ProfileReport"]


class ProfileReport(ProfileResult):
    """A :class:`~nbdeploy.profiling.ProfileResult` that renders as a report.

    The core result knows its figures, ``summary()`` and a cheap ``repr``; drawing the
    HTML report (percentiles table, latency histogram, CPU and memory charts, the
    recommendation) is the display layer's job (:mod:`nbdeploy.display.profile`,
    found through :mod:`nbdeploy.sdk.rendering`). :func:`nbdeploy.profile`,
    ``Model.profile`` and ``%profile`` return this class; it is still a
    ``ProfileResult`` (same fields, equality, round trip).

    Examples
    --------
    >>> from nbdeploy.profiling.report import example_dict
    >>> report = ProfileReport.from_dict(example_dict())
    >>> sorted(report._repr_mimebundle_())
    ['text/html', 'text/plain']
    >>> ProfileReport.from_result(ProfileResult.from_dict(example_dict())) == report
    True
    """

    @classmethod
    def from_result(cls, result: ProfileResult) -> ProfileReport:
        """The report of ``result`` (the same figures; ``result`` itself if it is one).

        Examples
        --------
        >>> from nbdeploy.profiling.report import example_dict
        >>> type(ProfileReport.from_result(ProfileResult.from_dict(example_dict()))).__name__
        'ProfileReport'
        """
        if isinstance(result, cls):
            return result
        return cls(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        """``text/plain`` (the summary) and ``text/html`` (inline SVG charts, escaped)."""
        return mimebundle("profile", self, include, exclude)
