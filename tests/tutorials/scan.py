"""Find machine-dependent values in the outputs nbval compares.

nbval (``make test``) runs each tutorial and compares what it prints with the outputs
stored in the ``.ipynb``. A stored output that depends on the CPU (the last digits of
a BLAS result), the clock, a port, a PID, a path or a random id passes only where it
happens to match: a fresh clone on another machine goes red. This module reads a
notebook the way nbval does — the same cells, the same outputs and MIME types, the
sanitizer of ``tests/nbval_sanitize.cfg`` applied first — and reports what is left
that looks machine-dependent, so such an output cannot be stored again unnoticed.

What nbval compares (nbval 0.11, ``nbval/plugin.py``): every code cell that ran
(``execution_count`` set), unless marked ``nbval-skip`` / ``nbval-ignore-output``
(tag or ``# NBVAL_…`` comment); of its outputs, stream text by stream name (streams
coalesced, ``\\r``/``\\b`` applied), the ``ename``/``evalue`` of errors, and every MIME
type of ``data`` except those in :data:`SKIP_COMPARE` (widget views; PNG/JPEG without
``--nbdime``). Strings are sanitized; other values (``application/json`` dicts) are
compared as they are, so they are scanned unsanitized.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbval.plugin import (
    coalesce_streams,
    find_comment_markers,
    find_metadata_tags,
    get_sanitize_patterns,
)

from nbdeploy import __version__ as NBDEPLOY_VERSION

__all__ = [
    "SKIP_COMPARE",
    "Finding",
    "compared_values",
    "find_machine_dependent",
    "load_sanitizer",
    "scan_notebook",
]

REPO = Path(__file__).resolve().parents[2]
SANITIZE_CFG = REPO / "tests" / "nbval_sanitize.cfg"

#: Keys nbval never compares (``IPyNbFile.__init__``, without ``--nbdime``).
#: ``test_scan.py`` reads them back from nbval's source, so a new nbval cannot drift.
SKIP_COMPARE = frozenset(
    {
        "metadata",
        "traceback",
        "prompt_number",
        "output_type",
        "name",
        "execution_count",
        "application/vnd.jupyter.widget-view+json",
        "image/png",
        "image/jpeg",
    }
)

#: Significant digits a float may show before it is taken for a full-precision result.
MAX_SIGNIFICANT_DIGITS = 6


def _host_path_literals() -> list[str]:
    """Paths of this machine a stored output may have picked up (the repository, the
    home and temp folders, the Python prefix), longest first."""
    paths = {str(REPO), str(Path.home()), tempfile.gettempdir(), sys.prefix}
    return sorted((p for p in paths if p.count("/") >= 2), key=len, reverse=True)


# Roots under which paths differ from machine to machine (temp folders, homes, CI
# checkouts). Paths inside a container image (/app, /opt/venv, /usr/local) are the
# same everywhere and are not listed.
_HOST_ROOTS = r"(?:tmp|var/tmp|var/folders|private|home|root|Users|work|mnt|media)"

_PACKAGES = (
    r"python|sklearn|scikit-learn|numpy|pandas|scipy|onnx|onnxruntime|skl2onnx|torch"
    r"|xgboost|lightgbm|fastapi|uvicorn|jupyterlab|ipykernel|docker"
)

#: (kind, pattern) pairs; each match in sanitized, compared text is a finding.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "absolute path",
        re.compile(
            rf"(?<![\w.~:/-])/{_HOST_ROOTS}/[^\s\"'<>`),;]*"
            + "".join(f"|{re.escape(p)}(?![\\w-])" for p in _host_path_literals())
        ),
    ),
    (
        "loopback port",
        # "127.0.0.1:41234", or a server's "listening 127.0.0.1 41234"
        re.compile(r"(?:\b127\.\d+\.\d+\.\d+|\blocalhost|\[::1\])(?::|\s+)\d{2,5}\b"),
    ),
    ("port number", re.compile(r"\bport\b\W{0,3}\d{4,5}\b", re.IGNORECASE)),
    ("pid", re.compile(r"\bpids?\b\W{0,3}\d+", re.IGNORECASE)),
    (
        "timestamp",
        re.compile(
            r"\b(?:19|20)\d{2}-\d{2}-\d{2}\b"  # a date (with or without its time)
            r"|\b\d{1,2}:\d{2}:\d{2}\b"  # a time of day
            r"|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} \w{3} \d{4}\b"  # an HTTP date
        ),
    ),
    ("duration", re.compile(r"(?<![\w.])\d+\.\d+\s?(?:ms|s|sec|seconds|µs|us)\b")),
    ("rate", re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:requests/s|req/s|rps)\b")),
    ("memory address", re.compile(r"\b0x[0-9a-fA-F]{6,}\b")),
    (
        "random id",
        re.compile(r"(?<![\w-])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{12,}(?![\w-])"),
    ),
    ("long integer", re.compile(r"(?<![\w.])\d{9,}(?![\w.])")),
    # The version of an installed package (Python, scikit-learn ...) follows the day of
    # installation: a pin (``name==1.2.3``) or a known package's name and version.
    # Versions this repository fixes (nbdeploy's own, OpenAPI's 3.1.0) are allowed.
    (
        "package version",
        re.compile(
            rf"(?:\b(?:{_PACKAGES})[ v]?|==)"
            rf"(?!{re.escape(NBDEPLOY_VERSION)}(?![\w.]))\d+\.\d+\.\d+(?![\w.])",
            re.IGNORECASE,
        ),
    ),
)


# A number as printed: digits with at most one decimal point, an optional exponent.
# Dotted runs (versions, IP addresses) are matched whole and then left alone.
_NUMBER = re.compile(r"(?<![\w.])\d[\d.]*(?:[eE][-+]?\d+)?(?![\w])")


def _significant_digits(number: str) -> int:
    mantissa = re.split(r"[eE]", number)[0]
    return len(mantissa.replace(".", "").lstrip("0"))


def _long_floats(text: str) -> Iterator[re.Match[str]]:
    for match in _NUMBER.finditer(text):
        number = match.group().rstrip(".")
        dots = number.count(".")
        is_float = dots == 1 or (dots == 0 and re.search(r"[eE]", number) is not None)
        if is_float and _significant_digits(number) > MAX_SIGNIFICANT_DIGITS:
            yield match


@dataclass(frozen=True)
class Finding:
    """One machine-dependent value in a compared output."""

    notebook: str
    cell: int  # nbval's number: code cells only, from 0
    key: str  # the MIME type, or "stdout"/"stderr"/"evalue"
    kind: str
    value: str
    context: str

    def __str__(self) -> str:
        return (
            f"{self.notebook}::Cell {self.cell} [{self.key}] {self.kind}: {self.value!r}"
            f" in ...{self.context}..."
        )


def find_machine_dependent(text: str) -> list[tuple[str, re.Match[str]]]:
    """Every ``(kind, match)`` in ``text`` that looks machine-dependent.

    Examples
    --------
    >>> [(kind, m.group()) for kind, m in find_machine_dependent("p=0.12345678, v 1.9.1")]
    [('float with more than 6 significant digits', '0.12345678')]
    """
    found: list[tuple[str, re.Match[str]]] = [
        (f"float with more than {MAX_SIGNIFICANT_DIGITS} significant digits", m)
        for m in _long_floats(text)
    ]
    for kind, pattern in PATTERNS:
        found.extend((kind, m) for m in pattern.finditer(text))
    return sorted(found, key=lambda item: item[1].start())


def load_sanitizer(path: Path = SANITIZE_CFG) -> list[tuple[str, str]]:
    """The ``(regex, replacement)`` pairs nbval reads from ``path``, in its order."""
    text = path.read_text(encoding="utf-8")
    return list(OrderedDict(get_sanitize_patterns(text)).items())


def sanitize(value: Any, rules: Iterable[tuple[str, str]]) -> Any:
    """What nbval compares: strings with every rule applied, other values as they are."""
    if not isinstance(value, str):
        return value
    for regex, replacement in rules:
        value = re.sub(regex, replacement, value)
    return value


def _placeholder_spans(text: str, rules: Iterable[tuple[str, str]]) -> list[tuple[int, int]]:
    """Where ``text`` holds a sanitizer's replacement: those parts compare equal on every
    machine, whatever they look like."""
    spans = []
    for _, replacement in rules:
        if replacement and "\\" not in replacement:  # no back-references
            spans.extend(m.span() for m in re.finditer(re.escape(replacement), text))
    return spans


def _cell_is_compared(cell: Mapping[str, Any]) -> bool:
    options: dict[str, Any] = dict(find_metadata_tags(cell.get("metadata", {})))
    options.update(find_comment_markers(cell.get("source", "")))
    if options.get("skip"):
        return False
    return bool(options.get("check", True)) and cell.get("execution_count") is not None


def _output_values(output: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if output.get("output_type") == "stream":
        yield str(output.get("name", "stream")), output.get("text", "")
        return
    for key, value in output.items():
        if key in SKIP_COMPARE:
            continue
        if key == "data":
            for mime, data in value.items():
                if mime not in SKIP_COMPARE:
                    yield mime, data
        else:
            yield key, value


def compared_values(nb: Any) -> Iterator[tuple[int, str, Any]]:
    """``(cell number, key, value)`` for every output value nbval compares in ``nb``."""
    cell_num = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if _cell_is_compared(cell):
            for output in coalesce_streams(copy.deepcopy(cell.get("outputs", []))):
                for key, value in _output_values(output):
                    yield cell_num, key, value
        cell_num += 1


def scan_notebook(
    path: Path, rules: Iterable[tuple[str, str]] | None = None, *, name: str | None = None
) -> list[Finding]:
    """The machine-dependent values left in ``path``'s compared outputs once sanitized."""
    rules = load_sanitizer() if rules is None else list(rules)
    nb = nbformat.read(path, as_version=4)
    findings = []
    for cell, key, value in compared_values(nb):
        clean = sanitize(value, rules)
        text = clean if isinstance(clean, str) else json.dumps(clean)
        replaced = _placeholder_spans(text, rules) if isinstance(clean, str) else []
        for kind, match in find_machine_dependent(text):
            if any(match.start() < end and start < match.end() for start, end in replaced):
                continue  # e.g. the "/tmp/TMPDIR" of "/tmp/TMPDIR/workspace"
            start, end = max(match.start() - 40, 0), match.end() + 40
            context = text[start:end].replace("\n", "\\n")
            findings.append(Finding(name or path.name, cell, key, kind, match.group(), context))
    return findings
