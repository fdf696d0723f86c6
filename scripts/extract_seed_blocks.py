"""Copy the Python code blocks of the Azure ML reference pages into the test data.

``tests/compat/test_seed_snippets.py`` runs the reference's own code (imports changed
to ``nbdeploy.aml``); it reads the blocks from ``tests/compat/seed_blocks.json``, which
this script writes from the pages (``../shared/seeds/*.txt`` of the steering repo), so
the test needs no file outside the repository::

    python scripts/extract_seed_blocks.py /work/shared/seeds tests/compat/seed_blocks.json

Each entry is ``{"page": "000_d34db37722b85693.txt", "line": 311, "code": "..."}``
(``line``: the line of the opening fence), for every fenced block marked ``python``.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

_FENCE = re.compile(r"^\s*```\s*(\S*)")


def blocks(page: Path) -> list[dict[str, object]]:
    """The ``python`` blocks of one page, dedented."""
    lines = page.read_text(encoding="utf-8").split("\n")
    found: list[dict[str, object]] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith("```"):
            end += 1
        if match.group(1).lower() == "python":
            code = textwrap.dedent("\n".join(lines[i + 1 : end])).strip("\n") + "\n"
            found.append({"page": page.name, "line": i + 1, "code": code})
        i = end + 1
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    seeds, output = Path(argv[0]), Path(argv[1])
    entries = [b for page in sorted(seeds.glob("*.txt")) for b in blocks(page)]
    output.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(entries)} blocks from {seeds} -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
