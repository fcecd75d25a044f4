"""Builds the Dockerfile (dockerfile.py reads it) into cached layers, step by step: COPY copies, WORKDIR
makes the folder, and every RUN step runs for real in a container of the layers so far (image.py)."""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.deploy.dockerfile import (
    AREAS,
    BASE_IMAGE,
    CACHE_FORMAT,
    CACHE_MAX_AGE,
    ENTER,
    IMAGE_PYTHON,
    ROOT,
    DockerfileError,
    Instruction,
    _base_skeleton,
    _image_path,
    _new_layer,
    cache_dir,
    context_files,
    env_pairs,
    parse,
    python_version,
    substitute,
)
from tests.deploy.image import Image


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
            raise DockerfileError(f"FROM {tag}: only {BASE_IMAGE} is stood in for by tests/deploy/builder.py")
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
                raise DockerfileError(f"{instruction}: multi-stage builds are not run by tests/deploy/builder.py")
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
