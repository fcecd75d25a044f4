"""The Dockerfile, built and run without a container engine, as an engine would.

``parse`` reads the project's Dockerfile; an instruction this module does not know how to run is an
error, so the Dockerfile can never say more than what is tested. ``build`` (builder.py) makes the image's
filesystem from the build context (the git-tracked files minus the ``.dockerignore`` patterns), one
layer per instruction that changes files, as overlayfs directories: COPY copies the files (owned by
root, modes kept), WORKDIR makes the folder, and every RUN step runs for real, in a container made of
the layers so far (tests/deploy/image_enter.py), with exactly the image's environment at that line, as the
user of that line, on the machine's network (as a build step has).

The base image ``python:3.11-slim`` is stood in for by this machine's Debian (its /etc, /usr and /var
as the lowest layer), with /usr/local replaced by a virtual environment of Debian's python3.11 (the
image's Python minor version: ``python`` and ``pip`` in /usr/local/bin), an empty /root, /home and
/tmp, and the base image's own environment (PATH, LANG, PYTHON_VERSION). The machine's pip
configuration is hidden, as the base image has none.

Layers are cached as an engine's layer cache is: an instruction's layer is reused while it and every
instruction before it, with the files they copy, are unchanged (so ``pip install -r requirements.txt``
runs again only when requirements.txt or a line before it changes). Cached layers live in
``$XDG_CACHE_HOME/sales-estimator/image-layers`` (default ``~/.cache``); those unused for two days are
removed.

``Image.run`` (image.py) starts a container from the image. Needs root (CI runs as root).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
ENTER = Path(__file__).resolve().parent / "image_enter.py"

BASE_IMAGE = "python:3.11-slim"
IMAGE_PYTHON = Path("/usr/bin/python3.11")  # Debian's: readable by any user (the pyenv one under /root is not)
# The image's filesystem is mounted per area: each is one overlay; those with a machine folder have it
# as their lowest layer (the stand-in for the base image's Debian).
AREAS: tuple[tuple[str, str | None], ...] = (("/", None), ("/etc", "/etc"), ("/usr", "/usr"), ("/var", "/var"))
SUPPORTED = ("FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "CMD", "LABEL")
CACHE_FORMAT = "layers-1"
CACHE_MAX_AGE = 2 * 86400


class DockerfileError(Exception):
    """The Dockerfile says something this module cannot run, or a build step failed."""


@dataclass
class Instruction:
    line: int
    op: str
    text: str  # everything after the keyword, continuation lines joined
    flags: dict[str, str] = field(default_factory=dict)
    json_form: list[str] | None = None  # exec form: ["a", "b"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.op} {self.text}"


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, continuation lines joined."""
    instructions: list[Instruction] = []
    logical: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if logical and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped, as the engine does
        if not logical:
            start = number
        if stripped.endswith("\\"):
            logical.append(stripped[:-1].strip())
            continue
        logical.append(stripped)
        instructions.append(_instruction(start, " ".join(part for part in logical if part)))
        logical = []
    if logical:
        raise DockerfileError(f"line {start}: the Dockerfile ends inside a continued instruction")
    return instructions


def _instruction(line: int, joined: str) -> Instruction:
    keyword, _, rest = joined.partition(" ")
    op = keyword.upper()
    if op not in SUPPORTED:
        raise DockerfileError(
            f"line {line}: {op} is not run by tests/deploy/dockerfile.py, so the image it makes is not tested; "
            "teach it what the instruction does"
        )
    rest = rest.strip()
    flags: dict[str, str] = {}
    while op in ("COPY", "RUN") and rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        rest = rest.strip()
    if flags and set(flags) - {"chown", "chmod"}:
        raise DockerfileError(f"line {line}: {op} flags {sorted(flags)} are not run by tests/deploy/dockerfile.py")
    json_form = None
    if op in ("RUN", "CMD", "COPY") and rest.startswith("["):
        try:
            json_form = json.loads(rest)
        except ValueError:
            json_form = None  # not valid JSON: the engine runs it in shell form too
        if json_form is not None and not (
            isinstance(json_form, list) and all(isinstance(item, str) for item in json_form)
        ):
            raise DockerfileError(f"line {line}: {op}'s exec form must be a JSON list of strings")
    return Instruction(line, op, rest, flags, json_form)


def substitute(word: str, env: dict[str, str]) -> str:
    """$NAME, ${NAME}, ${NAME:-default} and ${NAME:+alternative}, as the engine expands them."""

    def value(match: re.Match) -> str:
        name = match.group("name") or match.group("bare")
        current = env.get(name, "")
        operator, argument = match.group("op"), match.group("arg") or ""
        if operator == ":-":
            return current or argument
        if operator == ":+":
            return argument if current else ""
        return current

    pattern = (
        r"\$(?:\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
    )
    return re.sub(pattern, value, word)


def env_pairs(instruction: Instruction, env: dict[str, str]) -> list[tuple[str, str]]:
    """ENV a=1 b="two words", or the old form ENV NAME value."""
    words = shlex.split(instruction.text)
    if words and "=" not in words[0]:
        name, _, value = instruction.text.partition(" ")
        return [(name, substitute(value.strip(), env))]
    pairs = []
    for word in words:
        name, sep, value = word.partition("=")
        if not sep:
            raise DockerfileError(f"{instruction}: '{word}' is not NAME=value")
        pairs.append((name, substitute(value, env)))
    return pairs


# --- The build context ---------------------------------------------------------------------------


def _ignore_regex(pattern: str) -> re.Pattern:
    pattern = pattern.strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out = out[:-2] + "(?:.*/)?"
                i += 1
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "$")


def context_files(root: Path = ROOT) -> list[str]:
    """The git-tracked files that a build sends: .dockerignore's patterns taken out, `!` exceptions back."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    rules = []
    ignore = root / ".dockerignore"
    for line in ignore.read_text().splitlines() if ignore.exists() else []:
        line = line.strip()
        if line and not line.startswith("#"):
            exception = line.startswith("!")
            rules.append((exception, _ignore_regex(os.path.normpath(line.lstrip("!")))))
    kept = []
    for path in filter(None, listed):
        if not os.path.lexists(root / path):
            continue
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for exception, regex in rules:
            if any(regex.match(prefix) for prefix in prefixes):
                excluded = not exception
        if not excluded:
            kept.append(path)
    return sorted(kept)


# --- Layers --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = base / "sales-estimator" / "image-layers"
    directory.mkdir(parents=True, exist_ok=True)
    for _area, machine in AREAS:
        if machine and (directory == Path(machine) or Path(machine) in directory.parents):
            raise DockerfileError(f"the layer cache {directory} must not lie under {machine}: set XDG_CACHE_HOME")
    return directory


def _area_dir(layer: Path, area: str) -> Path:
    return layer / ("root" if area == "/" else area.strip("/"))


def _image_path(layer: Path, path: str) -> Path:
    """Where an absolute image path lies inside a layer directory (by its area)."""
    path = os.path.normpath(path)
    area = max((a for a, _ in AREAS if path == a or path.startswith(a.rstrip("/") + "/")), key=len)
    return _area_dir(layer, area) / os.path.relpath(path, area)


def _new_layer(path: Path) -> Path:
    for area, _ in AREAS:
        _area_dir(path, area).mkdir(parents=True, exist_ok=True)
    return path


def _whiteout(path: Path) -> None:
    """Hide a file of the layers below (overlayfs's whiteout: a 0/0 character device)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def _opaque(path: Path) -> None:
    """A folder that hides the lower layers' folder of the same name."""
    path.mkdir(parents=True, exist_ok=True)
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def _base_skeleton(layer: Path) -> None:
    root = _area_dir(layer, "/")
    for name in os.listdir("/"):
        if os.path.islink("/" + name):  # bin -> usr/bin, ... (merged /usr)
            os.symlink(os.readlink("/" + name), root / name)
    for name, mode in (
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("run", 0o755),
        ("srv", 0o755),
        ("opt", 0o755),
        ("mnt", 0o755),
        ("media", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("etc", 0o755),
        ("usr", 0o755),
        ("var", 0o755),
    ):
        (root / name).mkdir(exist_ok=True)
        os.chmod(root / name, mode)
    _opaque(_image_path(layer, "/usr/local"))
    # The base image has no pip configuration; this machine's would change what pip installs.
    for path in ("/etc/pip.conf", "/etc/xdg/pip"):
        if os.path.lexists(path):
            _whiteout(_image_path(layer, path))
    # A container engine writes these at run time (see Image.run).
    for name in ("hosts", "hostname"):
        target = _image_path(layer, "/etc/" + name)
        if not os.path.exists("/etc/" + name):
            target.write_text("")


def python_version() -> str:
    if not IMAGE_PYTHON.exists():
        raise FileNotFoundError(f"{IMAGE_PYTHON} is missing (apt-get install python3.11-venv)")
    return subprocess.run(
        [str(IMAGE_PYTHON), "-c", "import platform; print(platform.python_version())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


# --- The image -----------------------------------------------------------------------------------
