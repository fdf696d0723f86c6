"""Re-execute tutorial notebooks in place so their stored outputs match the code.

Run after changing what a tutorial shows: `make notebooks-refresh`. nbval
(`make test`) then compares every later run against these outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(paths: list[str]) -> None:
    for path in paths or sorted(str(p) for p in Path("notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(Path(path).parent)}},
        )
        client.execute()
        nbformat.write(nb, path)
        print(f"executed {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
