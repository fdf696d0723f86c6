"""Execute the tutorial notebooks so that their stored outputs match the code.

``make notebooks-refresh`` runs this on every tutorial in ``notebooks/``, in place:
first all but the Ray tutorials (with the private Docker engine up for the tutorials
that need it), then the Ray tutorials inside the Ray tests' private network namespace
(Ray probes cloud-metadata addresses and DNS even with usage statistics off); nbval
(``make test``) then compares every later run with these outputs, and
``tests/tutorials/test_stored_outputs.py`` checks that none of them depends on the
machine. The Binder test runs it in an environment built from ``binder/`` alone, on
copies, leaving out the tutorials that need Docker or Ray.

A tutorial declares what it needs beyond the Python packages in its metadata::

    "metadata": {"nbdeploy": {"requires": ["docker"]}}

(``"ray"``: Ray Serve, and a private network namespace to run in; the Makefile's
``RAY_NOTEBOOKS`` lists those tutorials.)

Usage::

    python scripts/execute_notebooks.py [NOTEBOOK ...] [--skip-requiring docker]
                                        [--output-dir DIR] [--timeout SECONDS]

It needs only ``nbformat`` and ``nbclient`` (both come with JupyterLab).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def requirements(nb: nbformat.NotebookNode) -> set[str]:
    """What a tutorial needs besides Python packages (``metadata.nbdeploy.requires``)."""
    return set(nb.metadata.get("nbdeploy", {}).get("requires", []))


def execute(path: Path, dest: Path, timeout: int) -> float:
    """Run every cell of ``path`` in a fresh ``python3`` kernel started in the
    notebook's folder, write the result to ``dest``; the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # per-cell timestamps of earlier runs: noise in a diff
        cell.metadata.pop("execution", None)
    started = time.monotonic()
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nbformat.write(nb, dest)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument(
        "--skip-requiring",
        action="append",
        default=[],
        metavar="NEED",
        help="leave out tutorials whose metadata requires NEED (docker, ray)",
    )
    parser.add_argument(
        "--output-dir", type=Path, help="write executed copies here instead of in place"
    )
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        needs = requirements(nbformat.read(path, as_version=4)) & set(args.skip_requiring)
        if needs:
            print(f"skipped  {path.name} (requires {', '.join(sorted(needs))})", flush=True)
            continue
        dest = args.output_dir / path.name if args.output_dir else path
        seconds = execute(path, dest, args.timeout)
        print(f"executed {path.name} in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
