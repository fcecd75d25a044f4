"""A built image (its layers) and the containers run from it, without a container engine: ``Image.run``
starts a container with the layers read-only, a fresh writable layer on top, its own PID namespace
(nothing it starts outlives it), optionally in a network namespace, with the image's USER, WORKDIR,
environment and CMD unless told otherwise. Needs root (CI runs as root). The format: dockerfile.py."""

from __future__ import annotations

import contextlib
import json
import os
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

from tests.deploy.dockerfile import AREAS, ENTER, DockerfileError, _area_dir, _image_path


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
