"""Takes docs/web.png: the web page answering a question about these docs.

Ingests docs/*.md into a temporary index, starts `rag serve`, uploads a note through the
page, asks a question and opens the first source, in headless Chromium (as tests/web).

    python docs/screenshot.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from tests.web.serving import chromium, served  # noqa: E402

QUESTION = "How do I ingest a folder of documents?"
NOTE = "Holidays: the office is closed from 24 December to 2 January.\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "docs"
        corpus.mkdir()
        for path in sorted((ROOT / "docs").glob("*.md")):
            shutil.copy(path, corpus / path.name)
        (work / "holidays.txt").write_text(NOTE)
        env = {"RAG_LLM__MAX_TOKENS": "80", "RAG_LLM__SEED": "1", "RAG_LLM__TEMPERATURE": "0"}
        with served(corpus, work, env) as url, chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-GB")
            page.set_default_timeout(120_000)
            page.goto(url)
            page.set_input_files("#files", str(work / "holidays.txt"))
            page.click("#upload")
            page.wait_for_selector(".job[data-status=done]")
            page.fill("#question", QUESTION)
            page.press("#question", "Enter")
            page.wait_for_selector(".source")
            page.wait_for_selector("#send:visible")
            page.locator(".source-head").first.click()
            page.evaluate("document.activeElement.blur()")
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(ROOT / "docs" / "web.png"))


if __name__ == "__main__":
    main()
