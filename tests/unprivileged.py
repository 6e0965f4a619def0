"""Running the `rag` command where file permissions bite (root reads anything).

As root, the command runs as an unprivileged user the tests create (`rag-unprivileged`), on
a folder it owns; when that user cannot run this Python (an interpreter under a home only
root may enter), it runs as root without the capabilities that let root pass permissions,
on a folder root owns. Not root: as the user the tests run as.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
USER = "rag-unprivileged"
_NO_CAPS = "-dac_override,-dac_read_search"
# The user runs the command, and the command its reading child (the interpreter again).
_PROBE = "import subprocess, sys, rag_cli; subprocess.run([sys.executable, '-c', 'pass'], check=True)"


@dataclass(frozen=True)
class Unprivileged:
    """How to run a command without the right to pass file permissions, and the folder to
    run it in (a fresh one, owned by whoever runs it)."""

    prefix: list[str]
    owner: tuple[int, int] | None  # (uid, gid) to give the folder's files to, or None

    def give(self, folder: Path) -> None:
        """Make everything under `folder` the user's (after the test wrote it as root)."""
        if self.owner is None:
            return
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, *self.owner, follow_symlinks=False)

    def rag(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return self.python("-m", "rag_cli", *args, cwd=cwd)

    def python(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        self.give(cwd)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(cwd), "COLUMNS": "200"}
        command = [*self.prefix, sys.executable, *args]
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def _user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        add = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER]
        subprocess.run(add, check=True, capture_output=True)
        entry = pwd.getpwnam(USER)
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="session")
def unprivileged() -> Iterator[Unprivileged]:
    if os.geteuid() != 0:
        yield Unprivileged([], None)
        return
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv")
    uid, gid = _user()
    prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def runs() -> bool:
        probe = [*prefix, sys.executable, "-c", _PROBE]
        return subprocess.run(probe, cwd="/", capture_output=True, env=env).returncode == 0

    granted: list[Path] = []
    if not runs():  # an interpreter under a home only root may enter (/root): let the user pass
        granted = _let_pass(uid, [Path(sys.executable).resolve(), ROOT])
    try:
        if runs():
            yield Unprivileged(prefix, (uid, gid))
        else:  # no ACLs here: root without the capabilities that pass permissions
            yield Unprivileged(
                ["setpriv", f"--bounding-set={_NO_CAPS}", f"--inh-caps={_NO_CAPS}", "--"], None
            )
    finally:
        for folder in granted:
            subprocess.run(["setfacl", "-x", f"u:{USER}", str(folder)], capture_output=True)


def _let_pass(uid: int, paths: list[Path]) -> list[Path]:
    """Give `uid` the right to pass (only to pass: x) each folder above `paths` it may not
    pass, by an ACL entry; the folders given it."""
    if shutil.which("setfacl") is None:
        return []
    closed = {
        folder
        for path in paths
        for folder in path.parents
        if not folder.stat().st_mode & 0o001 and folder.stat().st_uid != uid
    }
    granted = []
    for folder in sorted(closed):
        if subprocess.run(["setfacl", "-m", f"u:{USER}:x", str(folder)], capture_output=True).returncode == 0:
            granted.append(folder)
    return granted


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A fresh folder another user may enter (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="rag-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for top, folders, _ in os.walk(folder):  # what the test locked, opened before it is entered
            for name in folders:
                if not os.path.islink(os.path.join(top, name)):
                    os.chmod(os.path.join(top, name), 0o755)
        shutil.rmtree(folder)
