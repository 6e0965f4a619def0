"""The web page follows its key: a key scoped to some indexes sees only those in the
picker and the table, a read key sees no upload form, a revoked key is asked for again."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web.conftest import KEY, log_in
from tests.web.serving import rag


def _run(*args: str, env: dict[str, str]) -> str:
    process = rag(*args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = process.communicate(timeout=300)[0].decode()
    assert process.returncode == 0, out
    return out


def test_the_page_follows_a_scoped_key(
    open_page: Callable[..., Page], web_env: dict[str, str], tmp_path: Path
) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    (hr / "pay.txt").write_text("Salaries are paid on the 25th of each month by bank transfer.\n")
    _run("ingest", str(hr), "--index", "hr", "--quiet", env=web_env)
    created = _run("keys", "create", "reader", "--indexes", "default", "--role", "read", env=web_env)
    found = re.search(r"rag_[0-9a-f]+_\S+", created)
    assert found, created

    admin = open_page()
    log_in(admin, KEY)
    expect(admin.locator("#indexes tbody")).to_contain_text("hr")
    expect(admin.locator("#upload-section")).to_be_visible()

    page = open_page()
    log_in(page, found.group())
    expect(page.locator("#question")).to_be_visible()
    expect(page.locator("#indexes tbody")).to_contain_text("default")
    expect(page.locator("#indexes tbody")).not_to_contain_text("hr")
    expect(page.locator("#index option")).to_have_text(["default"])
    expect(page.locator("#upload-section")).to_be_hidden()

    _run("keys", "revoke", "reader", env=web_env)
    page.fill("#question", "When are salaries paid?")
    page.press("#question", "Enter")
    expect(page.locator("#key")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
