"""Fixtures of the Kubernetes target's tests: an emulated API server (kmock's pytest
plugin with :class:`.emulator.ClusterEmulator`) on 127.0.0.1, a kubeconfig naming it,
and the test playing the cluster's controllers (:class:`.emulator.AutoController`).

No real Kubernetes cluster runs in these tests (none can run on these machines); the
README says how to try the target on kind or minikube.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from .emulator import AutoController, ClusterEmulator, Controller

#: Every test here gets the extended emulator from kmock's ``kmock`` fixture.
KMOCK = pytest.mark.kmock(cls=ClusterEmulator)


@pytest.fixture
def kubeconfig(kmock: Any, tmp_path: Path) -> str:
    """A kubeconfig whose only context, ``emulated``, is the emulated API server."""
    path = tmp_path / "kubeconfig"
    server = str(kmock.url).rstrip("/")
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "emulated",
                "clusters": [{"name": "emulated", "cluster": {"server": server}}],
                "contexts": [
                    {"name": "emulated", "context": {"cluster": "emulated", "user": "tester"}}
                ],
                "users": [{"name": "tester", "user": {"token": "not-a-real-token"}}],
            }
        ),
        encoding="utf-8",
    )
    return str(path)


@pytest_asyncio.fixture
async def cluster(kmock: Any) -> AsyncIterator[AutoController]:
    """The emulated cluster's controllers, running in the background."""
    async with AutoController(Controller(kmock)) as auto:
        yield auto
