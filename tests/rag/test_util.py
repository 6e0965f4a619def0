"""Names shown as they are, on one line."""

from __future__ import annotations

import logging
import os

from rag.util import OneLineFormatter, console_text, printable, readable, undecodable


def test_names_are_shown_on_one_line_as_they_are() -> None:
    name = os.fsdecode(b"a\nb\r\t\x1b[2J\xc2\x85\xff\xe2\x80\xaec.md")  # the last: U+202E, valid UTF-8
    assert undecodable(name) and not undecodable("café\n.md")
    assert readable(name) == "a\nb\r\t\x1b[2J\x85\\xff\u202ec.md"  # only the undecodable byte
    assert printable(name) == "a\\nb\\r\\t\\x1b[2J\\x85\\xff\\u202ec.md"
    assert printable("café, 東京 and a space") == "café, 東京 and a space"
    assert console_text("[/x]\n.md") == "\\[/x]\\n.md"


def test_a_log_record_is_one_line() -> None:
    forged = "a\nWARNING x"
    record = logging.LogRecord("ingest", logging.WARNING, __file__, 1, "failed path=%s", (forged,), None)
    assert OneLineFormatter("%(levelname)s %(message)s").format(record) == "WARNING failed path=a\\nWARNING x"
