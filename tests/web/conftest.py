"""One real server (with an API key) and one browser for the tests of this package; a fresh
browser context, so an empty localStorage, for each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.web.serving import chromium, served

KEY = "k1"
# Answers come from a real model on a shared 2-core machine: seconds, not milliseconds.
expect.set_options(timeout=60_000)


@pytest.fixture(scope="package")
def web_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The served service's settings, for `rag` commands run beside it (`serving.rag`)."""
    work = tmp_path_factory.mktemp("web")
    return {
        "RAG_INDEXES_DIR": str(work / "indexes"),
        "RAG_SERVER__UPLOAD_DIR": str(work / "uploads"),
        "RAG_SERVER__API_KEYS": f'["{KEY}"]',
        "RAG_LLM__MAX_TOKENS": "24",
    }


@pytest.fixture(scope="package")
def web_url(web_env: dict[str, str]) -> Iterator[str]:
    work = Path(web_env["RAG_INDEXES_DIR"]).parent
    corpus = work / "docs"
    corpus.mkdir()
    (corpus / "cats.md").write_text(
        "# Cats\n\nCats are small carnivorous mammals that sleep about sixteen hours a day.\n\n"
        "## Food\n\nA cat eats fish and meat. Milk upsets the stomach of most adult cats.\n"
    )
    (corpus / "volcano.txt").write_text(
        "Mount Etna is an active volcano on the east coast of Sicily. "
        "It is the highest active volcano in Europe outside the Caucasus.\n"
    )
    (corpus / "bread.txt").write_text(
        "To bake bread, mix flour, water, salt and yeast, knead the dough for ten minutes, "
        "let it rise for two hours and bake it at 230 degrees for thirty minutes.\n"
    )
    with served(corpus, work, web_env) as url:
        yield url


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def open_page(browser: Browser, web_url: str) -> Iterator[Callable[..., Page]]:
    """Pages in fresh browser contexts (empty localStorage); no script error may happen."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def open_(locale: str = "en-GB", width: int = 1280, height: int = 900) -> Page:
        context = browser.new_context(
            base_url=web_url, locale=locale, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(60_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Refusals the tests ask for are logged by the browser as failed loads; nothing else
        # (a script or style the page's Content-Security-Policy blocks, say) may be.
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, errors


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    return open_page()


def log_in(page: Page, key: str = KEY) -> None:
    page.goto("/")
    page.fill("#key", key)
    page.press("#key", "Enter")
