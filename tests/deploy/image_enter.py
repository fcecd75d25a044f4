"""Start one process in an image's filesystem, as a container engine starts a container's process.

Run as root, by tests/deploy/dockerfile.py only: ``python image_enter.py SPEC_JSON``. SPEC holds the mount
points of the image's layers (overlayfs: the image's layers read-only, one writable layer on top), the
network namespace to join (none: the machine's network, as a build step has), the user and group
ids, the working directory, the environment and the command.

This process joins the network namespace, makes private mount, PID and UTS namespaces, and forks the
container's first process (PID 1 of its namespace): that one mounts the layers, /proc, /dev and /sys,
changes its root to the image's, drops to the user and runs the command with exactly the given
environment. When PID 1 ends, the kernel ends every other process of the namespace; when this process
dies, PID 1 is killed (so nothing outlives a test), and the mounts go with the namespace. Signals
sent to this process are passed on to PID 1, whose exit status becomes this process's.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

libc = ctypes.CDLL(None, use_errno=True)


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def first_process(spec: dict) -> None:
    """PID 1 of the container: mounts, root, user, then the command (never returns)."""
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl")
    root = spec["root"]
    mount("--make-rprivate", "/")
    for area in spec["areas"]:
        options = f"lowerdir={':'.join(area['lowers'])},upperdir={area['upper']},workdir={area['work']}"
        mount("-t", "overlay", "overlay", "-o", options, root + area["path"])
    mount("--rbind", "/dev", root + "/dev")
    mount("-t", "tmpfs", "-o", "mode=1777,size=64m", "shm", root + "/dev/shm")  # the container's own
    mount("-t", "proc", "proc", root + "/proc")  # this PID namespace's processes only
    mount("--rbind", "/sys", root + "/sys")
    for source, target in spec.get("binds", []):
        mount("--bind", source, root + target)
    hostname = spec.get("hostname", "").encode()
    if hostname:
        check(libc.sethostname(hostname, len(hostname)), "sethostname")
    os.chroot(root)
    os.chdir(spec["workdir"])
    os.setgroups(spec["groups"])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    try:
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as exc:
        print(f"image_enter: cannot run {spec['argv'][0]!r}: {exc}", file=sys.stderr, flush=True)
        os._exit(127)


def main() -> None:
    spec = json.loads(sys.argv[1])
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl")
    if spec.get("netns"):
        fd = os.open(spec["netns"], os.O_RDONLY)
        check(libc.setns(fd, CLONE_NEWNET), f"setns {spec['netns']}")
        os.close(fd)
    check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS), "unshare")
    pid = os.fork()
    if pid == 0:
        try:
            first_process(spec)
        except BaseException as exc:  # noqa: BLE001 - report any set-up failure, then end the child
            print(f"image_enter: setting up the container failed: {exc}", file=sys.stderr, flush=True)
        os._exit(125)
    if spec.get("pid_file"):
        with open(spec["pid_file"], "w") as file:
            file.write(str(pid))

    def forward(number, _frame) -> None:
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
