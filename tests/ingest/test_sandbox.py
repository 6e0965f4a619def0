"""The reading child: whatever a path holds, it is one message, and it is read as itself."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from ingest.sandbox import LoaderSandbox, frame, unframe
from rag.errors import LoaderError

ODD_NAMES = ["a\nb.md", "a\rb.md", "a\tb.md", "'a\".md", "-rf.md", "a\x01\x1b[2J\x7fb.md"]
ODD_NAMES += [os.fsdecode(b"a\xff\xfeb.md"), "n" * 252 + ".md"]


def test_frames_hold_any_bytes() -> None:
    for body in [b"", b"\n", b"a\nb\r\n\x00", bytes(range(256)) * 3]:
        stream = io.BytesIO(frame(body) + b"next")
        assert unframe(stream.read) == body and stream.read() == b"next"


def test_each_path_is_read_as_itself(tmp_path: Path, secret_cwd: Path) -> None:
    """Odd names, one after another to one child: each path gets its own file's text, and
    the tail of a name is never taken for a path of the working directory."""
    docs = tmp_path / "docs"
    docs.mkdir()
    files = [docs / name for name in ["1.md", "a\nconfig.toml", *ODD_NAMES, "z.md"]]
    for n, path in enumerate(files):
        path.write_text(f"Text of file number {n}.\n")
    with LoaderSandbox(30.0) as sandbox:
        for n, path in enumerate(files):
            assert [p.text.strip() for p in sandbox.pages(path)] == [f"Text of file number {n}."], path


def test_a_relative_path_is_not_read(secret_cwd: Path) -> None:
    with LoaderSandbox(30.0) as sandbox, pytest.raises(LoaderError, match="absolute"):
        list(sandbox.pages(Path("config.toml")))
