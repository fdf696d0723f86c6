"""Helpers every command group of the ``nbdeploy`` command shares."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["Command", "add_command", "key_value", "load_sample", "model_row", "print_table"]

#: A command: parsed arguments in, exit status out.
Command = Callable[[argparse.Namespace], int]


def add_command(parent: Any, name: str, func: Command, help: str) -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``func`` to ``parent`` (a subparsers action)."""
    p: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
    p.set_defaults(func=func)
    return p


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def model_row(m: Any) -> dict[str, Any]:
    return {
        "name": m.name,
        "version": m.version,
        "framework": f"{m.framework} {m.framework_version or ''}".strip(),
        "tags": ",".join(f"{k}={v}" for k, v in sorted(m.tags.items())),
        "created": m.created_time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def load_sample(path: str | None) -> Any:
    if path is None:
        return None
    import pandas as pd

    p = Path(path)
    if p.suffix == ".csv":
        return pd.read_csv(p)
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    if p.suffix == ".json":
        return json.loads(p.read_text())
    raise InvalidArgumentError(
        f"cannot read sample file {path!r}", hint="use a .csv, .parquet or .json file"
    )
