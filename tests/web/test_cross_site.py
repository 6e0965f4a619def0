"""Pages of other sites, in Chromium, against a server with no keys (the default): they
can neither ingest nor ask, whether from another origin or from a name rebound to this
machine, nor frame the page; the server's own page still can."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from rag.config import Settings
from rag.pipeline import Pipeline
from tests.api.conftest import running_server
from tests.web.serving import page_server

# Sends what a page may send anywhere without asking: no-cors fetches (multipart, text/plain,
# no type at all) and a form, the way a page the user happens to visit would.
ATTACKER = """<!doctype html>
<meta charset="utf-8"><title>Another site</title>
<form id="form" method="post" enctype="multipart/form-data" target="sink">
  <input type="file" name="files" id="file"><input name="index" value="default">
</form>
<iframe name="sink"></iframe>
<script>
const query = new URL(location).searchParams;
const service = query.get("service"), path = query.get("path");
const question = JSON.stringify({question: "What is the moon made of?"});
const chat = JSON.stringify({model: "default",
                            messages: [{role: "user", content: "What is the moon made of?"}]});
function planted() {
  const files = new FormData();
  files.append("files", new Blob(["The moon is made of green cheese."], {type: "text/plain"}), "moon.txt");
  return files;
}
async function attack() {
  const path_ = JSON.stringify({path});
  for (const [route, body] of [
    ["/ingest", planted()], ["/ingest", path_], ["/ingest", new Blob([path_])],  // no type at all
    ["/ask", question], ["/ask", new Blob([question])], ["/v1/chat/completions", chat],
  ]) {
    await fetch(service + route, {method: "POST", mode: "no-cors", body}).catch(() => null);
  }
}
function submitForm() {
  const files = new DataTransfer();
  files.items.add(new File(["The moon is made of green cheese."], "moon.txt", {type: "text/plain"}));
  document.getElementById("file").files = files.files;
  const form = document.getElementById("form");
  form.action = service + "/ingest";
  form.submit();
}
function frame(url) {
  return new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.onload = () => resolve();
    frame.src = url;
    document.body.append(frame);
  });
}
</script>
"""
ATTACKS = 7  # the fetches and the form


@pytest.fixture
def service(echo_pipeline: Pipeline) -> Iterator[str]:
    """A server as `rag serve` starts by default: on 127.0.0.1, no keys."""
    with running_server(echo_pipeline.settings, echo_pipeline) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context, not the package's keyed server: the refusals these tests
    cause are logged by the browser as errors."""
    context = browser.new_context()
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def metric(service: str, prefix: str) -> int:
    lines = httpx.get(service + "/metrics").text.splitlines()
    return sum(int(float(line.split()[-1])) for line in lines if line.startswith(prefix))


def refused(service: str, status: int, count: int) -> None:
    """Wait until `count` requests were refused with `status` (they did reach the server)."""
    prefix = f'rag_http_requests_total{{method="POST",route="unmatched",status="{status}"}}'
    deadline = time.monotonic() + 30
    while metric(service, prefix) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(service, prefix) == count


def nothing_written_nor_answered(service: str, settings: Settings) -> None:
    assert httpx.get(service + "/ingest").json()["data"] == []
    uploads = settings.server.upload_dir
    assert not uploads.exists() or not any(uploads.iterdir())
    assert metric(service, "rag_answers_total{") == 0
    search = httpx.post(service + "/search", json={"query": "moon green cheese", "min_score": 0})
    assert all("moon" not in hit["path"] for hit in search.json()["data"])


def test_a_page_of_another_site_can_neither_ingest_nor_ask(
    page: Page, service: str, settings: Settings, shared: Path
) -> None:
    with page_server(ATTACKER) as port:
        page.goto(f"http://attacker.example:{port}/?service={service}&path={shared}")
        page.evaluate("attack()")  # each fetch fails in the page: the answer is not for it to read
        with page.expect_response(service + "/ingest") as response:
            page.evaluate("submitForm()")
        assert response.value.status == 403
        refused(service, 403, ATTACKS)
        nothing_written_nor_answered(service, settings)

        # Nor can it show the server's page inside its own, to have it clicked.
        page.evaluate("url => frame(url)", service + "/")
        framed = page.locator("iframe").last.element_handle().content_frame()
        assert framed is not None and framed.url.startswith("chrome-error://")  # blocked

    # The server's own page, in the same browser, still ingests and asks.
    page.goto(service + "/")
    status = page.evaluate("""async () => {
        const files = new FormData();
        files.append("files", new Blob(["Owls hunt at night."], {type: "text/plain"}), "owls.txt");
        const upload = await fetch("/ingest", {method: "POST", body: files});
        const answer = await fetch("/ask", {method: "POST", headers: {"Content-Type": "application/json"},
                                            body: JSON.stringify({question: "When do owls hunt?"})});
        return [upload.status, answer.status];
    }""")
    assert status == [202, 200]
    assert metric(service, "rag_answers_total{") == 1


def test_a_page_on_a_name_rebound_to_this_machine_is_refused(
    page: Page, service: str, settings: Settings
) -> None:
    # evil.example, first the attacker's server, now resolves to 127.0.0.1 (DNS rebinding):
    # to the browser its requests to the service are same-origin.
    rebound = service.replace("127.0.0.1", "evil.example")
    response = page.goto(rebound + "/")
    assert response is not None and response.status == 400
    status = page.evaluate("""async () => {
        const files = new FormData();
        files.append("files", new Blob(["The moon is made of green cheese."]), "moon.txt");
        const upload = await fetch("/ingest", {method: "POST", body: files});
        const answer = await fetch("/ask", {method: "POST", headers: {"Content-Type": "application/json"},
                                            body: JSON.stringify({question: "What is the moon made of?"})});
        const read = await fetch("/ingest");
        return [upload.status, answer.status, read.status];
    }""")
    assert status == [400, 400, 400]
    nothing_written_nor_answered(service, settings)
