"""The web page at /, driven in headless Chromium against a real `rag serve` on the real
models: the key, a streamed answer with its sources, an upload answered from, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    done = _done_event(response.value.text())
    # The final text (citations rewritten), not the streamed draft; hidden notes left out.
    shown = answer.evaluate(
        "e => { const c = e.cloneNode(true); "
        "c.querySelectorAll('.visually-hidden').forEach(h => h.remove()); "
        "return c.textContent; }"
    )
    assert shown == done["answer"]
    # Sentences no passage backs are marked as such.
    weak = [s["text"] for s in done.get("sentences", []) if s["checked"] and not s["supported"]]
    marked = answer.locator(".unsupported")
    expect(marked).to_have_count(len(weak))
    for n, text in enumerate(weak):
        expect(marked.nth(n)).to_have_attribute("title", "Not supported by the documents")
        expect(marked.nth(n)).to_contain_text(text.strip()[:20])
    source = page.locator(".source").first
    expect(source.locator(".source-path")).to_have_text("docs/cats.md")
    expect(source).to_contain_text("score")
    source.locator(".source-head").click()
    expect(source.locator(".source-head")).to_have_attribute("aria-expanded", "true")
    expect(source.locator(".passage")).to_contain_text("fish and meat")
    source.locator(".source-head").click()
    expect(source.locator(".source-head")).to_have_attribute("aria-expanded", "false")
    # A citation is a link to its source's card, which it opens.
    for link in answer.locator(".cite a").all():
        link.click()
        card = page.locator(link.get_attribute("href") or "")
        expect(card.locator(".source-head")).to_have_attribute("aria-expanded", "true")

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
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tides.md").write_text("# Tides\n\nThe harbour of Kervalec dries out at low tide.\n")
    (folder / ".DS_Store").write_bytes(b"\0\1")  # hidden: left out
    log_in(page)
    page.set_input_files("#files", str(comet))
    page.set_input_files("#folder", str(folder))
    page.click("#upload")
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-status", "done")
    expect(job.locator(".file.added")).to_have_count(2)
    expect(job.locator(".file.added", has_text="comet.txt")).to_have_count(1)
    expect(job.locator(".file.added", has_text="notes/tides.md")).to_have_count(1)
    expect(job).not_to_contain_text("null")
    expect(page.locator("#indexes tbody tr", has_text="default").locator("td").first).to_have_text("5")

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
    expect(page.locator("#send")).to_be_visible()
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
    # Every control is reached by Tab, from the top of the page.
    seen = set()
    for _ in range(30):
        page.keyboard.press("Tab")
        seen.add(page.evaluate("document.activeElement.id"))
    assert {"index", "new-conversation", "lang", "question", "send", "files", "folder", "upload"} <= seen
    page.focus("#question")
    page.keyboard.type("How do I bake bread?")
    page.keyboard.press("Shift+Enter")  # a new line, not sent
    expect(page.locator(".turn")).to_have_count(0)
    slow_network(page)
    page.keyboard.press("Enter")
    expect(page.locator(".answer.streaming")).to_be_visible()
    page.keyboard.press("Escape")  # stops the answer
    expect(page.locator(".turn .answer")).to_contain_text("Stopped.")
    expect(page.locator("#question")).to_be_focused()


def test_a_running_answer_can_be_stopped(page: Page) -> None:
    log_in(page)
    expect(page.locator("#question")).to_be_visible()
    slow_network(page)
    page.fill("#question", "How do I bake bread?")
    page.press("#question", "Enter")
    expect(page.locator(".answer.streaming")).to_be_visible()
    page.click("#stop")
    expect(page.locator(".turn .answer")).to_contain_text("Stopped.")
    expect(page.locator(".answer.streaming")).to_have_count(0)
    expect(page.locator("#send")).to_be_visible()
    expect(page.locator("#question")).to_be_focused()


def test_what_the_documents_do_not_say_is_shown_as_such(page: Page) -> None:
    log_in(page)
    page.fill("#question", "What is the capital of Peru?")
    with page.expect_response("**/ask") as response:
        page.press("#question", "Enter")
    expect(page.locator("#send")).to_be_visible()
    done = _done_event(response.value.text())
    assert done["abstained"] is True, done
    expect(page.locator(".answer.notice .notice-label")).to_have_text("Not in the documents")
    expect(page.locator(".answer-text")).to_have_text(done["answer"])
    expect(page.locator(".answer-text .unsupported")).to_have_count(0)  # no claim to back
    if page.locator(".source").count():
        expect(page.locator(".sources h3")).to_have_text("See also")


def slow_network(page: Page) -> None:
    """About 100 bytes a second: an answer is still streaming when Stop is pressed."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": 100, "uploadThroughput": -1},
    )


def _done_event(stream: str) -> dict[str, Any]:
    block = stream.split("event: done\n", 1)[1]
    data: dict[str, Any] = json.loads(block.split("\n", 1)[0].removeprefix("data: "))
    return data


OLD_STREAM = (  # a service from before sentences, spans and abstained
    'event: token\ndata: {"text": "Cats eat fish [1]."}\n\n'
    'event: sources\ndata: [{"number": 1, "path": "docs/cats.md", "page": null, "pages": "", '
    '"heading": "Cats > Food", "snippet": "A cat eats fish and meat.", "score": 0.61, "cited": true}]\n\n'
    'event: done\ndata: {"usage": {}, "timings": {}, "finish_reason": "stop"}\n\n'
)


def test_an_answer_without_the_newer_fields_is_shown_as_it_is(page: Page) -> None:
    page.route(
        "**/ask", lambda route: route.fulfill(status=200, body=OLD_STREAM, content_type="text/event-stream")
    )
    log_in(page)
    page.fill("#question", "What do cats eat?")
    page.press("#question", "Enter")
    expect(page.locator(".answer-text")).to_have_text("Cats eat fish [1].")
    expect(page.locator(".source .passage")).to_have_text("A cat eats fish and meat.")
    expect(page.locator(".answer.notice, .unsupported, mark")).to_have_count(0)
    page.click(".cite a")
    expect(page.locator(".source-head")).to_have_attribute("aria-expanded", "true")
    # A follow-up carries the conversation so far.
    page.fill("#question", "And dogs?")
    with page.expect_request("**/ask") as request:
        page.press("#question", "Enter")
    assert request.value.post_data_json["history"] == [
        {"role": "user", "content": "What do cats eat?"},
        {"role": "assistant", "content": "Cats eat fish [1]."},
    ]
    expect(page.locator(".turn")).to_have_count(2)


def test_an_error_in_the_middle_of_a_stream_is_shown(page: Page) -> None:
    error = {"error": {"message": "the model failed", "type": "server_error"}}
    body = f'event: token\ndata: {{"text": "Cats"}}\n\nevent: error\ndata: {json.dumps(error)}\n\n'
    page.route("**/ask", lambda route: route.fulfill(status=200, body=body, content_type="text/event-stream"))
    log_in(page)
    page.fill("#question", "What do cats eat?")
    page.press("#question", "Enter")
    expect(page.locator("#banner-text")).to_contain_text("the model failed")
    expect(page.locator(".turn .answer .error")).to_contain_text("the model failed")
    expect(page.locator("#send")).to_be_visible()


def test_the_page_waits_for_the_models(page: Page) -> None:
    page.route("**/health", lambda route: route.fulfill(status=503, json={"status": "loading"}))
    page.goto("/")
    expect(page.locator("#status")).to_have_text("The models are loading…")
    page.unroute("**/health")
    expect(page.locator("#key")).to_be_visible()  # then asks for the key
