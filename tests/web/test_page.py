"""The web page at /, driven in headless Chromium against a real `rag serve` on the real
models: the key, a streamed answer with its sources, an upload answered from, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.web.conftest import KEY, log_in


def test_the_page_loads_without_a_key_and_refuses_a_wrong_one(page: Page, web_url: str) -> None:
    assert httpx.get(web_url + "/").status_code == 200
    assert httpx.get(web_url + "/static/app.js").status_code == 200
    assert httpx.get(web_url + "/static/../app.py").status_code == 404
    log_in(page, "not-the-key")
    expect(page.locator("#key-error")).to_contain_text("Wrong key")
    expect(page.locator("#app")).to_be_hidden()
    page.fill("#key", KEY)
    page.click("#key-submit")
    expect(page.locator("#question")).to_be_visible()
    expect(page.locator("#key-error")).to_be_hidden()
    expect(page.locator("#indexes tbody")).to_contain_text("default")


def test_ask_streams_an_answer_with_its_sources(page: Page) -> None:
    log_in(page)
    page.fill("#question", "What does a cat eat?")
    with page.expect_response("**/ask") as response:
        page.press("#question", "Enter")
        expect(page.locator("#stop")).to_be_visible()  # while the answer streams in
    assert response.value.headers["content-type"].startswith("text/event-stream")
    expect(page.locator("#send")).to_be_visible()
    answer = page.locator(".turn .answer-text").first
    expect(answer).not_to_be_empty()
    source = page.locator(".source").first
    expect(source.locator(".source-path")).to_have_text("docs/cats.md")
    expect(source).to_contain_text("score")
    source.locator(".source-head").click()
    expect(source.locator(".source-head")).to_have_attribute("aria-expanded", "true")
    expect(source.locator(".passage")).to_contain_text("fish and meat")

    # The conversation and the key are kept across a reload; a new conversation starts over.
    text = answer.inner_text()
    page.reload()
    expect(page.locator(".turn .answer-text").first).to_have_text(text)
    expect(page.locator(".turn .question")).to_contain_text("What does a cat eat?")
    page.click("#new-conversation")
    expect(page.locator(".turn")).to_have_count(0)


def test_an_uploaded_file_is_answered_from(page: Page, tmp_path: Path) -> None:
    comet = tmp_path / "comet.txt"
    comet.write_text("The comet Zarvolek returns every 41 years and glows bright green.\n")
    log_in(page)
    page.set_input_files("#files", str(comet))
    page.click("#upload")
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-status", "done")
    expect(job.locator(".file.added")).to_contain_text("comet.txt")
    expect(page.locator("#indexes tbody tr", has_text="default").locator("td").first).to_have_text("4")

    page.fill("#question", "When does the comet Zarvolek return?")
    page.press("#question", "Enter")
    expect(page.locator(".source .source-path").first).to_contain_text("comet.txt")
    expect(page.locator("#send")).to_be_visible()


def test_api_errors_are_shown_as_messages(page: Page, tmp_path: Path) -> None:
    (tmp_path / "tool.exe").write_bytes(b"MZ\0\0")
    log_in(page)
    page.set_input_files("#files", str(tmp_path / "tool.exe"))
    page.click("#upload")
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner-text")).to_contain_text("tool.exe")
    page.click("#banner-close")
    expect(page.locator("#banner")).to_be_hidden()


def test_french_from_the_browser_switchable_and_on_a_phone(open_page: Callable[..., Page]) -> None:
    page = open_page(locale="fr-FR", width=390, height=844)
    page.goto("/")
    expect(page.locator("#key-submit")).to_have_text("Continuer")
    page.fill("#key", KEY)
    page.press("#key", "Enter")
    expect(page.locator("#send")).to_have_text("Demander")
    # One column: nothing wider than the screen, the side panel below the answers.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    chat, side = page.locator(".chat").bounding_box(), page.locator(".side").bounding_box()
    assert chat and side and side["y"] >= chat["y"] + chat["height"] - 1
    page.click("#lang")
    expect(page.locator("#send")).to_have_text("Ask")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.reload()  # the choice is kept
    expect(page.locator("#send")).to_have_text("Ask")


def test_usable_with_the_keyboard(page: Page) -> None:
    log_in(page)
    expect(page.locator("#question")).to_be_focused()
    page.keyboard.type("Where is Mount Etna?")
    page.keyboard.press("Shift+Enter")  # a new line, not sent
    expect(page.locator(".turn")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.locator(".source").first).to_be_visible()
    expect(page.locator("#send")).to_be_visible()
    page.locator(".source-head").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".source-head").first).to_have_attribute("aria-expanded", "true")
    # Every control is reached by Tab.
    seen = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.add(page.evaluate("document.activeElement.id"))
    assert {"index", "new-conversation", "lang", "question", "files", "folder", "upload"} <= seen
