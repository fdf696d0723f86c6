"""The tutorials on Ray run only where Ray may run: in the Ray tests' private network
namespace (Ray probes cloud-metadata addresses and DNS even with usage statistics off).

A tutorial says it needs Ray in its metadata (``"nbdeploy": {"requires": ["ray"]}``);
the Makefile lists those tutorials in ``RAY_NOTEBOOKS``, runs them under nbval through
``in-netns`` and leaves them out of the other nbval run and of the Docker step of
``make notebooks-refresh``. This checks that the two lists are the same.
"""

from __future__ import annotations

import re

import nbformat

from .scan import REPO

MAKEFILE = REPO / "Makefile"


def _requiring_ray() -> list[str]:
    found = []
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        needs = nbformat.read(path, as_version=4).metadata.get("nbdeploy", {}).get("requires", [])
        if "ray" in needs:
            found.append(f"notebooks/{path.name}")
    return found


def _makefile_variable(name: str) -> list[str]:
    match = re.search(rf"^{name}\s*:?=(.*)$", MAKEFILE.read_text(), flags=re.MULTILINE)
    assert match is not None, f"the Makefile defines no {name}"
    return match.group(1).split()


def test_the_makefile_runs_exactly_the_ray_tutorials_in_the_namespace() -> None:
    ray_tutorials = _requiring_ray()
    assert ray_tutorials, "no tutorial declares that it requires ray"
    assert sorted(_makefile_variable("RAY_NOTEBOOKS")) == ray_tutorials


def test_the_refresh_leaves_the_ray_tutorials_to_the_namespace() -> None:
    text = MAKEFILE.read_text()
    assert "scripts/execute_notebooks.py --skip-requiring ray)" in text
    assert "$(call in-netns,$(PY) scripts/execute_notebooks.py $(RAY_NOTEBOOKS))" in text
    assert "$(call in-netns,$(NBVAL_RAY))" in text
