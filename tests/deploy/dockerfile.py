"""The Dockerfile, built and run without a container engine, as an engine would.

``parse`` reads the project's Dockerfile; an instruction this module does not know how to run is an
error, so the Dockerfile can never say more than what is tested. ``build`` makes the image's
filesystem from the build context (the git-tracked files minus the ``.dockerignore`` patterns), one
layer per instruction that changes files, as overlayfs directories: COPY copies the files (owned by
root, modes kept), WORKDIR makes the folder, and every RUN step runs for real, in a container made of
the layers so far (tests/image_enter.py), with exactly the image's environment at that line, as the
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

``Image.run`` starts a container from the image: its layers read-only, a fresh writable layer on top,
its own PID namespace (nothing it starts outlives it), optionally in a network namespace, with the
image's USER, WORKDIR, environment and CMD unless told otherwise. Needs root (CI runs as root).
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
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
            f"line {line}: {op} is not run by tests/dockerfile.py, so the image it makes is not tested; "
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
        raise DockerfileError(f"line {line}: {op} flags {sorted(flags)} are not run by tests/dockerfile.py")
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


@dataclass
class Image:
    layers: list[Path]  # lowest first
    env: dict[str, str]
    user: str
    workdir: str
    cmd: list[str]
    log: list[str] = field(default_factory=list)

    def read(self, path: str) -> str:
        """A file of the image as its topmost layer holding it has it (the machine's as the base)."""
        for layer in reversed(self.layers):
            candidate = _image_path(layer, path)
            if os.path.lexists(candidate):
                if stat.S_ISCHR(os.lstat(candidate).st_mode):
                    raise FileNotFoundError(path)
                return candidate.read_text()
        return Path(path).read_text()

    def ids(self, user: str) -> tuple[int, int, list[int], str]:
        """uid, gid, supplementary groups and home of USER (name or uid, optionally :group)."""
        name, _, group = user.partition(":")
        passwd = [line.split(":") for line in self.read("/etc/passwd").splitlines() if line.count(":") >= 6]
        groups = [line.split(":") for line in self.read("/etc/group").splitlines() if line.count(":") >= 3]
        entry = next((e for e in passwd if e[0] == name or e[2] == name), None)
        if entry is None:
            if not name.isdigit():
                raise DockerfileError(f"USER {user}: no such user in the image's /etc/passwd")
            uid, gid, home, login = int(name), int(name), "/", name
        else:
            uid, gid, home, login = int(entry[2]), int(entry[3]), entry[5], entry[0]
        if group:
            found = next((g for g in groups if g[0] == group or g[2] == group), None)
            if found is None and not group.isdigit():
                raise DockerfileError(f"USER {user}: no such group in the image's /etc/group")
            gid = int(found[2]) if found else int(group)
        supplementary = sorted({int(g[2]) for g in groups if login in g[3].split(",")} | {gid})
        return uid, gid, supplementary, home

    def process_env(self, user: str, extra: dict[str, str] | None = None, hostname: str = "") -> dict[str, str]:
        """What a process of the image gets: the image's ENV, then HOSTNAME and HOME as an engine adds them."""
        env = {**self.env, **(extra or {})}
        if hostname:
            env.setdefault("HOSTNAME", hostname)
        env.setdefault("HOME", self.ids(user)[3])
        return env

    def spec(
        self,
        argv: list[str],
        *,
        upper: Path,
        work: Path,
        mountpoint: Path,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        netns: str | None = None,
        binds: list[tuple[str, str]] | None = None,
        hostname: str = "",
        pid_file: str | None = None,
    ) -> dict:
        user = self.user if user is None else user
        uid, gid, groups, _ = self.ids(user)
        areas = []
        for area, machine in AREAS:
            lowers = [str(_area_dir(layer, area)) for layer in reversed(self.layers)]
            if machine:
                lowers.append(machine)
            (upper / _area_dir(Path(), area)).mkdir(parents=True, exist_ok=True)
            (work / _area_dir(Path(), area)).mkdir(parents=True, exist_ok=True)
            areas.append(
                {
                    "path": "" if area == "/" else area,
                    "lowers": lowers,
                    "upper": str(upper / _area_dir(Path(), area)),
                    "work": str(work / _area_dir(Path(), area)),
                }
            )
        mountpoint.mkdir(parents=True, exist_ok=True)
        return {
            "root": str(mountpoint),
            "areas": areas,
            "netns": netns,
            "binds": binds or [],
            "hostname": hostname,
            "workdir": workdir or self.workdir,
            "uid": uid,
            "gid": gid,
            "groups": groups,
            "env": self.process_env(user, env, hostname if pid_file else ""),
            "argv": argv,
            "pid_file": pid_file,
        }

    @contextlib.contextmanager
    def container(self, scratch: Path, **options) -> Iterator[Container]:
        """A running container of this image (its CMD, or argv), stopped and removed on leaving; ``options``
        are Container.start's."""
        box = Container.start(self, scratch, **options)
        try:
            yield box
        finally:
            box.remove()


@dataclass
class Container:
    image: Image
    directory: Path
    process: subprocess.Popen
    log: Path
    env: dict[str, str]

    @classmethod
    def start(
        cls,
        image: Image,
        scratch: Path,
        *,
        argv: list[str] | None = None,
        env: dict[str, str] | None = None,
        netns: str | None = None,
        hosts: str = "",
        hostname: str = "",
        log: Path | None = None,
    ) -> Container:
        directory = Path(tempfile.mkdtemp(prefix="container-", dir=scratch))
        hostname = hostname or uuid.uuid4().hex[:12]
        binds = []
        for name, content in (
            ("hosts", hosts or "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
            ("hostname", hostname + "\n"),
        ):
            (directory / name).write_text(content)
            binds.append((str(directory / name), "/etc/" + name))
        spec = image.spec(
            argv or image.cmd,
            upper=directory / "upper",
            work=directory / "work",
            mountpoint=directory / "rootfs",
            env=env,
            netns=f"/run/netns/{netns}" if netns else None,
            binds=binds,
            hostname=hostname,
            pid_file=str(directory / "pid"),
        )
        log = log or directory / "log"
        process = subprocess.Popen(
            [sys.executable, str(ENTER), json.dumps(spec)],
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        return cls(image, directory, process, log, spec["env"])

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def first_pid(self) -> int:
        """The container's PID 1, as this machine numbers it."""
        deadline = time.monotonic() + 10
        pid_file = self.directory / "pid"
        while not (pid_file.exists() and pid_file.read_text()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the container did not start: {self.output()[-3000:]}")
            time.sleep(0.05)
        return int(pid_file.read_text())

    def exec(
        self, argv: list[str], *, user: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """`docker exec`: a process in the running container, with its environment, as its user."""
        user = self.image.user if user is None else user
        uid, gid, groups, _ = self.image.ids(user)
        environment = {**self.env, **(env or {})}
        environment["HOME"] = (env or {}).get("HOME") or self.image.ids(user)[3]
        command = [
            "nsenter",
            f"--target={self.first_pid()}",
            "--mount",
            "--net",
            "--pid",
            "--uts",
            "--root",
            "--",
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            f"--groups={','.join(map(str, groups))}",
            "env",
            "-i",
            f"--chdir={self.image.workdir}",
            *(f"{name}={value}" for name, value in environment.items()),
            *argv,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self, timeout: float = 15) -> int | None:
        """`docker stop`: SIGTERM to PID 1, SIGKILL after the timeout; every process of the container ends."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()  # its PID 1 is killed with it (parent-death signal), and so the namespace
                self.process.wait()
        return self.process.returncode

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class Builder:
    """Builds ``Dockerfile`` of ``root`` into cached layers, step by step."""

    def __init__(self, root: Path = ROOT, scratch: Path | None = None, progress=None):
        self.root = root
        self.cache = cache_dir()
        self.scratch = scratch or Path(tempfile.mkdtemp(prefix="image-build-"))
        self.progress = progress or (lambda message: None)

    def _cached_layer(self, key: str, make) -> tuple[Path, bool]:
        """The layer for ``key``: from the cache, or made by ``make(directory)`` and then kept."""
        final = self.cache / key
        if final.exists():
            os.utime(final)
            return final, True
        partial = self.cache / f".{key}.{uuid.uuid4().hex[:8]}"
        _new_layer(partial)
        try:
            make(partial)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        partial.rename(final)
        return final, False

    def _run_step(self, image: Image, argv: list[str], layer: Path, user: str, env: dict[str, str]) -> str:
        """A RUN step in a container of the layers so far; its files become ``layer``."""
        work = Path(tempfile.mkdtemp(prefix="step-", dir=self.scratch))
        try:
            spec = image.spec(
                argv,
                upper=layer,
                work=work / "work",
                mountpoint=work / "rootfs",
                user=user,
                env=env,
                hostname="buildkitsandbox",
            )
            result = subprocess.run(
                [sys.executable, str(ENTER), json.dumps(spec)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=1800,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if result.returncode != 0:
            raise DockerfileError(
                f"RUN {' '.join(argv)} exited with {result.returncode}:\n{(result.stdout + result.stderr)[-6000:]}"
            )
        return result.stdout + result.stderr

    def build(self) -> Image:
        with (self.cache / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._build()
            finally:
                self._prune()

    def _base(self, tag: str) -> tuple[Image, str]:
        if tag != BASE_IMAGE:
            raise DockerfileError(f"FROM {tag}: only {BASE_IMAGE} is stood in for by tests/dockerfile.py")
        version = python_version()
        if not version.startswith(tag.split(":")[1].split("-")[0] + "."):
            raise DockerfileError(f"{IMAGE_PYTHON} is Python {version}, not the image's {tag}")
        key = hashlib.sha256(f"{CACHE_FORMAT}\0{tag}\0{version}".encode()).hexdigest()[:32]
        skeleton, _ = self._cached_layer(key + "-skeleton", _base_skeleton)
        env = {
            "PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "PYTHON_VERSION": version,
        }
        image = Image([skeleton], env, "root", "/", [])
        venv, cached = self._cached_layer(
            key + "-python",
            lambda layer: self._run_step(image, [str(IMAGE_PYTHON), "-m", "venv", "/usr/local"], layer, "root", env),
        )
        image.layers.append(venv)
        self.progress(f"FROM {tag}: Debian's Python {version} in /usr/local{' (cached)' if cached else ''}")
        return image, key

    def _build(self) -> Image:
        instructions = parse((self.root / "Dockerfile").read_text())
        if not instructions or instructions[0].op != "FROM":
            raise DockerfileError("the Dockerfile must start with FROM")
        files = context_files(self.root)
        image, key = self._base(instructions[0].text.split()[0])
        for instruction in instructions[1:]:
            if instruction.op == "FROM":
                raise DockerfileError(f"{instruction}: multi-stage builds are not run by tests/dockerfile.py")
            chain = hashlib.sha256(f"{key}\0{instruction.op}\0{instruction.flags}\0{instruction.text}".encode())
            cached = False
            if instruction.op == "ENV":
                image.env.update(env_pairs(instruction, image.env))
            elif instruction.op == "USER":
                image.user = substitute(instruction.text, image.env)
                image.ids(image.user)  # the user must exist, as the engine checks when it runs a step
            elif instruction.op == "CMD":
                image.cmd = instruction.json_form or ["/bin/sh", "-c", instruction.text]
            elif instruction.op in ("EXPOSE", "LABEL"):
                pass  # metadata only
            elif instruction.op == "WORKDIR":
                path = os.path.normpath(os.path.join(image.workdir, substitute(instruction.text, image.env)))
                layer, cached = self._cached_layer(
                    chain.hexdigest()[:32], lambda layer, p=path: _image_path(layer, p).mkdir(parents=True)
                )
                image.workdir = path
                image.layers.append(layer)
            elif instruction.op == "COPY":
                sources, destination = self._copy_args(instruction, image)
                for source in sources:
                    for path in self._expand(source, files):
                        chain.update(f"\0{path}\0{os.lstat(self.root / path).st_mode}\0".encode())
                        chain.update(self._digest(self.root / path))
                layer, cached = self._cached_layer(
                    chain.hexdigest()[:32],
                    lambda layer, i=instruction, s=sources, d=destination: self._copy(i, image, files, s, d, layer),
                )
                image.layers.append(layer)
            elif instruction.op == "RUN":
                argv = instruction.json_form or ["/bin/sh", "-c", instruction.text]
                env, user = dict(image.env), image.user
                layer, cached = self._cached_layer(
                    chain.hexdigest()[:32],
                    lambda layer, a=argv, u=user, e=env: image.log.append(self._run_step(image, a, layer, u, e)),
                )
                image.layers.append(layer)
            key = chain.hexdigest()
            if instruction.op in ("WORKDIR", "COPY", "RUN"):
                self.progress(f"{instruction}{' (cached)' if cached else ''}")
        return image

    @staticmethod
    def _digest(path: Path) -> bytes:
        if path.is_symlink():
            return hashlib.sha256(os.readlink(path).encode()).digest()
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").digest()

    def _copy_args(self, instruction: Instruction, image: Image) -> tuple[list[str], str]:
        words = instruction.json_form or shlex.split(instruction.text)
        words = [substitute(word, image.env) for word in words]
        if len(words) < 2:
            raise DockerfileError(f"{instruction}: COPY needs a source and a destination")
        return words[:-1], words[-1]

    def _expand(self, source: str, files: list[str]) -> list[str]:
        """Context files a COPY source names: a file, a folder (its files), or a wildcard."""
        source = os.path.normpath(source.lstrip("/"))
        if source == ".":
            return list(files)
        found = [
            path
            for path in files
            if path == source or path.startswith(source + "/") or fnmatch.fnmatchcase(path, source)
        ]
        if not found:
            raise DockerfileError(f"COPY {source}: not in the build context (tracked, and not in .dockerignore)")
        return found

    def _copy(
        self,
        instruction: Instruction,
        image: Image,
        files: list[str],
        sources: list[str],
        destination: str,
        layer: Path,
    ) -> None:
        destination = os.path.join(image.workdir, destination)
        into_folder = destination.endswith("/") or instruction.text.rstrip().endswith((" .", "/")) or len(sources) > 1
        owner = (0, 0)
        if instruction.flags.get("chown"):
            uid, gid, _, _ = image.ids(instruction.flags["chown"])
            owner = (uid, gid)
        for source in sources:
            base = os.path.normpath(source.lstrip("/"))
            for path in self._expand(source, files):
                if base == ".":
                    relative = path
                elif path == base:
                    relative = os.path.basename(path) if into_folder else ""
                elif path.startswith(base + "/"):
                    relative = os.path.relpath(path, base)
                else:
                    relative = os.path.basename(path)  # a wildcard match
                target_path = os.path.join(destination, relative) if relative else destination
                target = _image_path(layer, target_path)
                self._make_parents(layer, os.path.dirname(target_path), owner)
                origin = self.root / path
                if origin.is_symlink():
                    os.symlink(os.readlink(origin), target)
                else:
                    shutil.copy2(origin, target)
                    if instruction.flags.get("chmod"):
                        os.chmod(target, int(instruction.flags["chmod"], 8))
                os.lchown(target, *owner)

    def _make_parents(self, layer: Path, path: str, owner: tuple[int, int]) -> None:
        parts = Path(path).parts
        for n in range(2, len(parts) + 1):
            folder = "/".join(parts[:n]).replace("//", "/")
            target = _image_path(layer, folder)
            if target.is_dir() and not target.is_symlink():
                continue
            if folder in [a for a, _ in AREAS]:
                continue
            target.mkdir(mode=0o755, exist_ok=True)
            os.chmod(target, 0o755)
            os.lchown(target, *owner)

    def _prune(self) -> None:
        now = time.time()
        for entry in self.cache.iterdir():
            if entry.name == ".lock":
                continue
            try:
                old = now - entry.stat().st_mtime > CACHE_MAX_AGE
            except FileNotFoundError:
                continue
            if old or (entry.name.startswith(".") and now - entry.stat().st_mtime > 3600):
                shutil.rmtree(entry, ignore_errors=True)


def build(root: Path = ROOT, scratch: Path | None = None, progress=None) -> Image:
    return Builder(root, scratch, progress).build()
