"""Fixtures for the Azure ML compatibility tests: in-process apps whose stand-in modules
are removed again after each test (the kernel process must never keep them)."""

from __future__ import annotations

from tests.server.conftest import _isolated_process_state, diabetes, make_bundle, serve_app

__all__ = ["_isolated_process_state", "diabetes", "make_bundle", "serve_app"]
