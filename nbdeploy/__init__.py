"""nbdeploy: turn a model in a Jupyter kernel into a documented, measured web service."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
