"""Environments: the Python version and the packages a scoring service needs.

An :class:`Environment` is what a target installs before it starts the scoring server:
a Python version, pip requirements and, optionally, the conda specification it came
from. It can be written by hand, read from a ``requirements.txt`` or a conda
``environment.yml``, or **captured from the running kernel**: the exact installed
versions of the distributions the scoring script and the model frameworks import —
never a dump of the whole kernel (that is what makes MLflow images huge and fragile).

Requirements files
    Comments, blank lines, ``\\`` line continuations and ``-r other.txt`` includes
    (relative to the including file) are understood; environment markers and per-line
    ``--hash`` options are kept verbatim. Index options (``--index-url``,
    ``--extra-index-url``, ``--find-links <URL>``, ``--trusted-host``, ``--pre`` ...)
    are kept as lines of the requirements, because the generated ``requirements.txt``
    goes straight to ``pip install -r`` where they mean the same thing. What cannot
    travel into a bundle or an image is refused with :class:`EnvironmentSpecError`:
    constraints files (``-c``), local paths (``./pkg``, ``-e .``, a local
    ``--find-links`` folder) and options pip does not know.

Examples
--------
>>> env = Environment(name="demo", python_version="3.11", requirements=("numpy==2.0.0",))
>>> print(env.to_requirements_txt(), end="")
# nbdeploy environment 'demo' (python 3.11)
numpy==2.0.0
>>> Environment.from_dict(env.to_dict()) == env
True
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.metadata
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbdeploy.exceptions import EnvironmentSpecError, InvalidArgumentError

__all__ = [
    "FRAMEWORK_MODULES",
    "SERVED_BY_NBDEPLOY",
    "Environment",
    "imported_modules",
    "parse_requirements",
    "running_python_version",
]

#: Modules each model framework needs at load time, by framework name of the registry.
#: ``python`` models are cloudpickles, which the server (nbdeploy itself) can load.
FRAMEWORK_MODULES: dict[str, tuple[str, ...]] = {
    "sklearn": ("sklearn",),
    "onnx": ("onnx", "onnxruntime"),
    "torch": ("torch",),
    "python": (),
}

#: Modules never pinned: the scoring server itself provides nbdeploy.
_PROVIDED_BY_SERVER = frozenset({"nbdeploy"})

_VERSION_RE = re.compile(r"^\d+(\.\d+){0,2}$")
_NAME_RE = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
# What may follow a project name on a requirement line (PEP 508 + pip's per-line options).
_AFTER_NAME_RE = re.compile(r"^\s*(\[[^\]]*\])?\s*($|[;@(<>=!~,]|--hash)")

# Options kept verbatim (normalised to their long spelling), with or without a value.
_PASS_OPTIONS_WITH_VALUE = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--no-binary": "--no-binary",
    "--only-binary": "--only-binary",
    "--use-feature": "--use-feature",
}
_PASS_FLAGS = {"--pre", "--prefer-binary", "--require-hashes", "--no-index"}


def running_python_version() -> str:
    """The ``major.minor.micro`` version of the interpreter running this code.

    Examples
    --------
    >>> running_python_version().count(".")
    2
    """
    return "{}.{}.{}".format(*sys.version_info[:3])


#: Azure ML's serving packages, which environments written for it list: nbdeploy's
#: scoring server and its ``azureml`` stand-ins take their place, so a bundle's
#: ``requirements.txt`` keeps them as comments instead of installing them.
SERVED_BY_NBDEPLOY = frozenset(
    {
        "azureml-defaults",
        "azureml-core",
        "azureml-inference-server-http",
        "azureml-contrib-services",
    }
)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_key(line: str) -> str:
    """The key deciding whether two requirement lines are about the same thing."""
    match = _NAME_RE.match(line)
    if match and not line.startswith("-") and not _URL_RE.match(line):
        return _canonical(match.group(1))
    return line


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join ``\\`` continuations and drop comments; returns (first line number, text)."""
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        line = _COMMENT_RE.sub("", "".join(pending)).strip()
        pending = []
        if line:
            result.append((start, line))
    if pending:
        line = _COMMENT_RE.sub("", "".join(pending)).strip()
        if line:
            result.append((start, line))
    return result


def _is_local_path(value: str) -> bool:
    if _URL_RE.match(value):
        return value.startswith("file:")
    return value.startswith((".", "/", "~", "\\")) or "/" in value or value.endswith(".whl")


def _spec_error(where: str, message: str, hint: str) -> EnvironmentSpecError:
    return EnvironmentSpecError(f"{where}: {message}", hint=hint)


def _parse_lines(text: str, *, base: Path, source: str, stack: tuple[Path, ...] = ()) -> list[str]:
    requirements: list[str] = []
    for number, line in _logical_lines(text):
        where = f"{source}, line {number}"
        if line.startswith("-"):
            requirements.extend(_parse_option(line, where=where, base=base, stack=stack))
            continue
        if _URL_RE.match(line):
            if line.startswith("file:"):
                raise _spec_error(
                    where,
                    f"local file requirement {line!r} cannot travel into a bundle",
                    "build a wheel and publish it to an index, or put the code in the "
                    "inference config's source_directory",
                )
            requirements.append(line)
            continue
        match = _NAME_RE.match(line)
        if match is None or not _AFTER_NAME_RE.match(line[match.end() :]):
            if _is_local_path(line):
                raise _spec_error(
                    where,
                    f"local path {line!r} cannot travel into a bundle",
                    "publish the package to an index, or put the code in the inference "
                    "config's source_directory",
                )
            raise _spec_error(
                where,
                f"{line!r} is not a requirement",
                "write one requirement per line: 'name', 'name==1.2', 'name>=1; "
                "python_version < \"3.12\"' or 'name @ https://...'",
            )
        requirements.append(line)
    return requirements


def _parse_option(line: str, *, where: str, base: Path, stack: tuple[Path, ...]) -> list[str]:
    match = re.match(r"^(--?[A-Za-z][A-Za-z-]*)(?:\s*=\s*|\s+|$)(.*)$", line)
    if match is None:
        raise _spec_error(where, f"cannot read option {line!r}", "write '--option value'")
    option, value = match.group(1), match.group(2).strip()
    if option in ("-r", "--requirement"):
        if not value:
            raise _spec_error(where, f"{option} needs a file name", "write '-r other.txt'")
        if _URL_RE.match(value):
            raise _spec_error(
                where,
                f"remote requirements file {value!r} is not supported",
                "download it next to this file and include it with '-r'",
            )
        return _read_requirements_file(base / value, stack=stack)
    if option in ("-c", "--constraint"):
        raise _spec_error(
            where,
            f"constraints file {value!r} is not supported",
            "pin the versions in the requirements file itself",
        )
    if option in ("-e", "--editable"):
        if not value or not _URL_RE.match(value) or value.startswith("file:"):
            raise _spec_error(
                where,
                f"editable local install {value!r} cannot travel into a bundle",
                "use a VCS URL ('-e git+https://...#egg=name'), publish the package, or "
                "put the code in the inference config's source_directory",
            )
        return [f"-e {value}"]
    if option in _PASS_FLAGS:
        if value:
            raise _spec_error(where, f"{option} takes no value, got {value!r}", f"write {option}")
        return [option]
    if option in _PASS_OPTIONS_WITH_VALUE:
        long = _PASS_OPTIONS_WITH_VALUE[option]
        if not value:
            raise _spec_error(where, f"{option} needs a value", f"write '{long} <value>'")
        if long == "--find-links" and _is_local_path(value) and not _URL_RE.match(value):
            raise _spec_error(
                where,
                f"local --find-links folder {value!r} cannot travel into a bundle",
                "serve the wheels from an index or a URL",
            )
        return [f"{long} {value}"]
    raise _spec_error(
        where,
        f"unsupported option {option!r}",
        "nbdeploy keeps -r, -e <VCS URL>, --index-url, --extra-index-url, --find-links "
        "<URL>, --trusted-host, --pre, --prefer-binary, --no-binary, --only-binary, "
        "--require-hashes, --no-index and --use-feature",
    )


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnvironmentSpecError(
            f"{what} {str(path)!r} does not exist", hint="check the path"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvironmentSpecError(
            f"cannot read {what} {str(path)!r}: {exc}",
            hint="the file must be readable UTF-8 text",
        ) from None


def _read_requirements_file(path: Path, *, stack: tuple[Path, ...] = ()) -> list[str]:
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in (*stack, resolved))
        raise EnvironmentSpecError(
            f"requirements files include each other in a cycle: {chain}",
            hint="remove one of the '-r' lines",
        )
    text = _read_text(path, "requirements file")
    return _parse_lines(text, base=path.parent, source=str(path), stack=(*stack, resolved))


def parse_requirements(text: str, *, base: str | Path = ".", source: str = "<text>") -> list[str]:
    """Parse the text of a requirements file into requirement lines.

    Parameters
    ----------
    text:
        The file's content.
    base:
        The folder ``-r`` includes are relative to.
    source:
        How error messages name the text.

    Raises
    ------
    EnvironmentSpecError
        A line that is no requirement, or an option that cannot travel into a bundle
        (see the module docstring).

    Examples
    --------
    >>> parse_requirements("numpy>=1.24  # arrays\\n\\npandas \\\\\\n  ==2.2.0\\n")
    ['numpy>=1.24', 'pandas   ==2.2.0']
    """
    return _parse_lines(text, base=Path(base), source=source)


_YAML_SCALARS = {"null": None, "~": None, "true": True, "false": False, "True": True}


def _yaml_scalar(text: str, where: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text[:1] in ("'", '"', "|", ">", "{", "&", "*", "!"):
        raise EnvironmentSpecError(
            f"{where}: {text!r} uses YAML this reader does not support",
            hint="install PyYAML (pip install pyyaml) to read any YAML",
        )
    if text in _YAML_SCALARS:
        return _YAML_SCALARS[text]
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?", text):
        return float(text)
    return text


def _strip_yaml_comment(line: str) -> str:
    quote: str | None = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"" and (i == 0 or line[i - 1] in " -:[,"):
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


# "key: value" / "key:" of a block mapping; the key may be quoted. A colon must be
# followed by a space or the end of the line, so "conda-forge::python" and URLs are
# scalars, as in YAML.
_KEY_VALUE_RE = re.compile(r"""^("[^"]*"|'[^']*'|[^\s'"#\[\]{},:-][^:]*?)\s*:(?:\s+(.*))?$""")


class _YamlSubset:
    """A reader for the block-style YAML subset conda environment files use.

    Mappings, sequences (also at the indentation of their key, as conda writes them),
    ``- key: value`` items, flow lists of scalars (``[a, b]``), quoted and plain
    scalars, comments. Used only when PyYAML is not installed.
    """

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines: list[tuple[int, int, str]] = []  # (line number, indent, content)
        for number, raw in enumerate(text.splitlines(), start=1):
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise EnvironmentSpecError(
                    f"{source}, line {number}: tabs are not allowed for YAML indentation",
                    hint="indent with spaces",
                )
            content = _strip_yaml_comment(raw)
            if not content.strip() or content.strip() in ("---", "..."):
                continue
            indent = len(content) - len(content.lstrip(" "))
            self.lines.append((number, indent, content.strip()))

    def parse(self) -> Any:
        if not self.lines:
            return None
        value, index = self._block(0, self.lines[0][1])
        if index < len(self.lines):
            number, _, content = self.lines[index]
            raise self._error(number, f"unexpected {content!r}")
        return value

    def _error(self, number: int, message: str) -> EnvironmentSpecError:
        return EnvironmentSpecError(
            f"{self.source}, line {number}: {message}",
            hint="check the indentation, or install PyYAML (pip install pyyaml)",
        )

    @staticmethod
    def _is_item(content: str) -> bool:
        return content == "-" or content.startswith("- ")

    def _block(self, index: int, indent: int) -> tuple[Any, int]:
        if self._is_item(self.lines[index][2]):
            return self._sequence(index, indent)
        return self._mapping(index, indent)

    def _value_after(self, index: int, indent: int, number: int) -> tuple[Any, int]:
        """The nested block after a ``key:`` or ``-`` with nothing on its line."""
        if index < len(self.lines):
            _, next_indent, content = self.lines[index]
            if next_indent > indent or (next_indent == indent and self._is_item(content)):
                return self._block(index, next_indent)
        return None, index

    def _sequence(self, index: int, indent: int) -> tuple[list[Any], int]:
        items: list[Any] = []
        while index < len(self.lines):
            number, line_indent, content = self.lines[index]
            if line_indent != indent or not self._is_item(content):
                break
            rest = content[1:].lstrip(" ")
            if not rest:
                value, index = self._value_after(index + 1, indent + 1, number)
                items.append(value)
                continue
            if self._key_value(rest) is not None:
                # "- key: value": a mapping whose first key sits after the dash.
                offset = indent + len(content) - len(rest)
                self.lines[index] = (number, offset, rest)
                value, index = self._mapping(index, offset)
                items.append(value)
                continue
            items.append(self._inline(rest, number))
            index += 1
        return items, index

    @staticmethod
    def _key_value(content: str) -> tuple[str, str] | None:
        match = _KEY_VALUE_RE.match(content)
        if match is None:
            return None
        return match.group(1), (match.group(2) or "").strip()

    def _mapping(self, index: int, indent: int) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        while index < len(self.lines):
            number, line_indent, content = self.lines[index]
            if line_indent < indent:
                break
            if line_indent > indent:
                raise self._error(number, f"unexpected indentation of {content!r}")
            if self._is_item(content):
                break
            pair = self._key_value(content)
            if pair is None:
                raise self._error(number, f"expected 'key: value', got {content!r}")
            key = str(_yaml_scalar(pair[0], f"{self.source}, line {number}"))
            if key in result:
                raise self._error(number, f"duplicate key {key!r}")
            if pair[1]:
                result[key] = self._inline(pair[1], number)
                index += 1
            else:
                result[key], index = self._value_after(index + 1, indent, number)
        return result, index

    def _inline(self, text: str, number: int) -> Any:
        where = f"{self.source}, line {number}"
        if text.startswith("["):
            if not text.endswith("]"):
                raise self._error(number, f"unterminated flow list {text!r}")
            inner = text[1:-1].strip()
            return [_yaml_scalar(part, where) for part in inner.split(",")] if inner else []
        return _yaml_scalar(text, where)


def _load_yaml(text: str, source: str) -> Any:
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        return _YamlSubset(text, source).parse()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EnvironmentSpecError(
            f"{source} is not valid YAML: {exc}", hint="check the indentation and quoting"
        ) from None


def _conda_python_version(spec: str) -> str | None:
    """``"python=3.11"`` → ``"3.11"``; ``"python"`` → ``None``; other packages → ``""``."""
    name = spec.split("::", 1)[-1].strip()
    match = re.match(r"^python(?![A-Za-z0-9_.-])\s*(.*)$", name)
    if match is None:
        return ""
    rest = match.group(1).strip()
    if not rest:
        return None
    version = re.match(r"^(?:==|=|>=|~=|\s)*\s*(\d+(?:\.\d+){0,2})", rest)
    if version is None:
        raise EnvironmentSpecError(
            f"cannot read the Python version from conda dependency {spec!r}",
            hint="write it like 'python=3.11'",
        )
    return version.group(1)


def imported_modules(source: str, *, filename: str = "<script>") -> list[str]:
    """The top-level names of the modules ``source`` imports, in order of appearance.

    Absolute imports anywhere in the code count (also inside functions, where scoring
    scripts often import heavy libraries in ``init()``); relative imports do not (they
    are the script's own package).

    Raises
    ------
    EnvironmentSpecError
        When the source does not parse.

    Examples
    --------
    >>> imported_modules("import numpy as np\\nfrom sklearn.linear_model import Ridge\\n")
    ['numpy', 'sklearn']
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise EnvironmentSpecError(
            f"cannot capture the imports of {filename}: line {exc.lineno}: {exc.msg}",
            hint="fix the syntax error first (check_script shows it)",
        ) from None
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.setdefault(alias.name.split(".")[0], None)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.setdefault(node.module.split(".")[0], None)
    return list(names)


def _is_local_module(name: str, folders: Iterable[Path]) -> bool:
    return any((f / f"{name}.py").is_file() or (f / name).is_dir() for f in folders)


@dataclass(frozen=True)
class Environment:
    """A Python version plus the pip requirements (and conda spec) a service needs.

    Parameters
    ----------
    name:
        A label shown in manifests and images.
    python_version:
        ``major``, ``major.minor`` or ``major.minor.micro``; the running interpreter's
        version by default.
    requirements:
        pip requirement lines, as in a ``requirements.txt``.
    conda:
        The whole conda specification this environment was read from, if any.
    missing:
        Modules :meth:`from_kernel` found imported but not provided by any installed
        distribution (not installed here, or local modules outside the script's
        folders). They are not pinned; the report lets the front warn about them.

    Examples
    --------
    >>> Environment(requirements=["numpy"]).requirements
    ('numpy',)
    """

    name: str = "default"
    python_version: str = field(default_factory=running_python_version)
    requirements: tuple[str, ...] = ()
    conda: dict[str, Any] | None = None
    missing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgumentError(
                f"invalid environment name {self.name!r}", hint="use a non-empty string"
            )
        if not isinstance(self.python_version, str) or not _VERSION_RE.match(self.python_version):
            raise InvalidArgumentError(
                f"invalid python_version {self.python_version!r} for environment {self.name!r}",
                hint="write it like '3.11' or '3.11.7'",
            )
        requirements: Any = self.requirements  # callers may pass a list or, wrongly, a str
        if isinstance(requirements, str):
            raise InvalidArgumentError(
                f"requirements of environment {self.name!r} must be a list of lines, "
                f"got the string {requirements!r}",
                hint="write requirements=['numpy==2.0.0', ...]",
            )
        lines = tuple(requirements)
        for line in lines:
            if not isinstance(line, str) or not line.strip() or "\n" in line:
                raise InvalidArgumentError(
                    f"invalid requirement {line!r} in environment {self.name!r}",
                    hint="each requirement is one non-empty line like 'numpy==2.0.0'",
                )
        object.__setattr__(self, "requirements", tuple(line.strip() for line in lines))
        object.__setattr__(self, "missing", tuple(self.missing))
        if self.conda is not None:
            if not isinstance(self.conda, Mapping):
                raise InvalidArgumentError(
                    f"conda specification of environment {self.name!r} must be a dict, "
                    f"got {type(self.conda).__name__}",
                )
            try:
                # A private, JSON-safe copy: the dict must survive to_dict/bundle.json.
                conda = json.loads(json.dumps(dict(self.conda)))
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError(
                    f"conda specification of environment {self.name!r} is not JSON-safe: {exc}",
                ) from None
            object.__setattr__(self, "conda", conda)

    @classmethod
    def from_pip_requirements(cls, name: str, file_path: str | Path) -> Environment:
        """Read a ``requirements.txt`` (see the module docstring for what is kept).

        Raises
        ------
        EnvironmentSpecError
            The file is missing or unreadable, or a line cannot travel into a bundle.

        Examples
        --------
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "requirements.txt"
        >>> _ = p.write_text("numpy==2.0.0  # arrays\\n")
        >>> Environment.from_pip_requirements("env", p).requirements
        ('numpy==2.0.0',)
        """
        return cls(name=name, requirements=tuple(_read_requirements_file(Path(file_path))))

    @classmethod
    def from_conda_specification(cls, name: str, file_path: str | Path) -> Environment:
        """Read a conda ``environment.yml``.

        The Python version comes from the ``python`` dependency (the running version if
        it is not pinned), the pip requirements from the ``pip:`` sub-list, and the
        whole specification is kept in :attr:`conda`. PyYAML is used when installed;
        otherwise a reader for the block-style subset conda files use.

        Raises
        ------
        EnvironmentSpecError
            The file is missing, is not YAML, or is not shaped like a conda file.

        Examples
        --------
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "environment.yml"
        >>> _ = p.write_text("dependencies:\\n- python=3.11\\n- pip:\\n  - numpy==2.0.0\\n")
        >>> env = Environment.from_conda_specification("env", p)
        >>> env.python_version, env.requirements
        ('3.11', ('numpy==2.0.0',))
        """
        path = Path(file_path)
        source = str(path)
        data = _load_yaml(_read_text(path, "conda specification"), source)
        if not isinstance(data, dict):
            raise EnvironmentSpecError(
                f"{source} is not a conda specification: expected a mapping with "
                f"'dependencies', got {type(data).__name__}",
                hint="see https://docs.conda.io for the environment.yml format",
            )
        dependencies = data.get("dependencies") or []
        if not isinstance(dependencies, list):
            raise EnvironmentSpecError(
                f"{source}: 'dependencies' must be a list, got {type(dependencies).__name__}",
                hint="write each dependency on its own '- ' line",
            )
        python_version: str | None = None
        requirements: list[str] = []
        for entry in dependencies:
            if isinstance(entry, str):
                version = _conda_python_version(entry)
                if version:
                    python_version = version
            elif isinstance(entry, dict) and set(entry) == {"pip"}:
                pip = entry["pip"] or []
                if not isinstance(pip, list) or not all(isinstance(p, str) for p in pip):
                    raise EnvironmentSpecError(
                        f"{source}: the 'pip' dependency must be a list of requirement lines",
                        hint="write '- pip:' and under it '  - numpy==2.0.0'",
                    )
                requirements.extend(
                    _parse_lines("\n".join(pip), base=path.parent, source=f"{source} (pip)")
                )
            else:
                raise EnvironmentSpecError(
                    f"{source}: cannot read dependency {entry!r}",
                    hint="dependencies are strings like 'numpy=1.26' or a 'pip:' list",
                )
        return cls(
            name=name,
            python_version=python_version or running_python_version(),
            requirements=tuple(requirements),
            conda=data,
        )

    @classmethod
    def from_kernel(
        cls,
        *,
        script: str | Path | None = None,
        source: str | None = None,
        frameworks: Iterable[str] = (),
        modules: Iterable[str] = (),
        name: str = "captured",
        local_paths: Iterable[str | Path] = (),
    ) -> Environment:
        """Capture what a scoring script needs from the running kernel, pinned exactly.

        Only distributions that the script (``script`` file or ``source`` text), the
        model ``frameworks`` and the extra ``modules`` import are pinned, at the
        versions installed here (``dist==version``). The standard library and nbdeploy
        itself (the server provides it) are skipped, and so are modules that live next
        to the script or in ``local_paths`` (they travel in the bundle's source
        folder). Imported modules no installed distribution provides are listed in
        :attr:`missing` instead of failing, so a front can warn about them.

        Parameters
        ----------
        script, source:
            The scoring script as a file or as text (at most one of them).
        frameworks:
            Framework names of the models (``sklearn``, ``onnx``, ``torch``,
            ``python``; other names are taken as module names).
        modules:
            More top-level module names to pin (say, what a pickled model needs).
        name:
            The environment's name.
        local_paths:
            Folders whose modules are the user's own code, not distributions.

        Examples
        --------
        >>> env = Environment.from_kernel(source="import numpy\\nimport json\\n")
        >>> [r.split("==")[0] for r in env.requirements]
        ['numpy']
        """
        if script is not None and source is not None:
            raise InvalidArgumentError(
                "pass either script= or source= to Environment.from_kernel, not both"
            )
        folders = [Path(p) for p in local_paths]
        wanted: list[str] = []
        if script is not None:
            path = Path(script)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise EnvironmentSpecError(
                    f"cannot read scoring script {str(path)!r}: {exc}", hint="check the path"
                ) from None
            wanted.extend(imported_modules(text, filename=str(path)))
            folders.append(path.parent)
        elif source is not None:
            wanted.extend(imported_modules(source))
        for framework in frameworks:
            wanted.extend(FRAMEWORK_MODULES.get(framework, (framework,)))
        wanted.extend(m.split(".")[0] for m in modules)

        providers = importlib.metadata.packages_distributions()
        pins: dict[str, str] = {}
        missing: dict[str, None] = {}
        for module in wanted:
            if (
                module in sys.stdlib_module_names
                or module in _PROVIDED_BY_SERVER
                or _is_local_module(module, folders)
            ):
                continue
            dists = providers.get(module)
            if not dists:
                missing.setdefault(module, None)
                continue
            for dist in dists:
                if _canonical(dist) in _PROVIDED_BY_SERVER or _canonical(dist) in pins:
                    continue
                try:
                    version = importlib.metadata.version(dist)
                except importlib.metadata.PackageNotFoundError:
                    missing.setdefault(module, None)
                    continue
                pins[_canonical(dist)] = f"{dist}=={version}"
        requirements = tuple(sorted(pins.values(), key=str.lower))
        return cls(name=name, requirements=requirements, missing=tuple(missing))

    def with_requirements(self, *lines: str, override: bool = False) -> Environment:
        """A copy with more requirement lines (say, what the server needs).

        A line about a project the environment already names is ignored, unless
        ``override`` is true, in which case it replaces the existing line.

        Examples
        --------
        >>> env = Environment(python_version="3.11", requirements=("numpy==2.0.0",))
        >>> env.with_requirements("numpy", "fastapi").requirements
        ('numpy==2.0.0', 'fastapi')
        >>> env.with_requirements("numpy>=2", override=True).requirements
        ('numpy>=2',)
        """
        merged: dict[str, str] = {_requirement_key(r): r for r in self.requirements}
        for line in lines:
            key = _requirement_key(line.strip())
            if override or key not in merged:
                merged[key] = line
        return Environment(
            name=self.name,
            python_version=self.python_version,
            requirements=tuple(merged.values()),
            conda=self.conda,
            missing=self.missing,
        )

    def merge(self, other: Environment) -> Environment:
        """This environment plus the requirements of ``other`` it does not name yet.

        Examples
        --------
        >>> a = Environment(python_version="3.11", requirements=("numpy==2.0.0",))
        >>> b = Environment(python_version="3.11", requirements=("numpy", "pandas"))
        >>> a.merge(b).requirements
        ('numpy==2.0.0', 'pandas')
        """
        merged = self.with_requirements(*other.requirements)
        extra = tuple(m for m in other.missing if m not in self.missing)
        return Environment(
            name=merged.name,
            python_version=merged.python_version,
            requirements=merged.requirements,
            conda=merged.conda,
            missing=self.missing + extra,
        )

    def to_requirements_txt(self) -> str:
        """The requirements as the text of a ``requirements.txt`` for ``pip install -r``.

        Examples
        --------
        >>> print(Environment("e", "3.11", ("pandas==2.2.0",)).to_requirements_txt(), end="")
        # nbdeploy environment 'e' (python 3.11)
        pandas==2.2.0
        """
        header = f"# nbdeploy environment {self.name!r} (python {self.python_version})"
        lines = [
            f"# {line}  (not installed: nbdeploy's scoring server replaces it)"
            if _requirement_key(line) in SERVED_BY_NBDEPLOY
            else line
            for line in self.requirements
        ]
        return "\n".join((header, *lines)) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; :meth:`from_dict` reads it back.

        Examples
        --------
        >>> Environment("e", "3.11").to_dict()["python_version"]
        '3.11'
        """
        return {
            "name": self.name,
            "python_version": self.python_version,
            "requirements": list(self.requirements),
            "conda": copy.deepcopy(self.conda),
            "missing": list(self.missing),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Environment:
        """Read what :meth:`to_dict` wrote.

        Examples
        --------
        >>> Environment.from_dict({"name": "e", "python_version": "3.10"}).requirements
        ()
        """
        if not isinstance(data, Mapping):
            raise EnvironmentSpecError(
                f"an environment must be a dict, got {type(data).__name__}",
                hint="pass what Environment.to_dict() returns",
            )
        unknown = set(data) - {"name", "python_version", "requirements", "conda", "missing"}
        if unknown:
            raise EnvironmentSpecError(
                f"unknown environment fields {sorted(unknown)}",
                hint="use name, python_version, requirements, conda, missing",
            )
        try:
            return cls(
                name=data.get("name", "default"),
                python_version=data.get("python_version") or running_python_version(),
                requirements=tuple(data.get("requirements") or ()),
                conda=data.get("conda"),
                missing=tuple(data.get("missing") or ()),
            )
        except InvalidArgumentError as exc:
            raise EnvironmentSpecError(exc.message, hint=exc.hint) from None
