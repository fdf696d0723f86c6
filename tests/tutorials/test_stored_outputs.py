"""Every tutorial's stored outputs compare equal on any machine.

nbval (``make test``) compares each tutorial's fresh outputs with the ones stored in
its ``.ipynb``, after ``tests/nbval_sanitize.cfg``. This scans those stored outputs for
what would still differ on another machine — full-precision floats, paths, ports,
PIDs, times, random ids (see :mod:`tests.tutorials.scan`) — and for cells that were
never run (nbval compares nothing for them). After ``make notebooks-refresh`` it says
which cell to fix: print the value in a stable form (rounded, a shape, an
``np.allclose`` check), or add a sanitizer rule when the value is noise by nature.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from .scan import REPO, scan_notebook

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_are_tutorials() -> None:
    assert len(NOTEBOOKS) >= 2, f"no tutorials found in {REPO / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_compared_outputs_hold_no_machine_dependent_value(path: Path) -> None:
    findings = scan_notebook(path)
    listing = "\n".join(f"  {f}" for f in findings[:40])
    more = f"\n  ... and {len(findings) - 40} more" if len(findings) > 40 else ""
    assert not findings, (
        f"{len(findings)} machine-dependent value(s) in outputs nbval compares:\n"
        f"{listing}{more}\nPrint them in a stable form (round, shapes, np.allclose) or "
        "sanitize them in tests/nbval_sanitize.cfg, then `make notebooks-refresh`."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_was_run(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    unrun = [n for n, c in enumerate(code) if c.execution_count is None]
    assert code, f"{path.name} has no code cells"
    assert not unrun, (
        f"{path.name}: code cells {unrun} have no stored outputs to compare; "
        "run `make notebooks-refresh`"
    )
