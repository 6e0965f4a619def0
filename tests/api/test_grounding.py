"""The answer's grounding over HTTP: sentences and what backs them, spans within each
source's text, abstention; on /ask, its stream, and the OpenAI route's extension field."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.pipeline import Pipeline


def check_spans(sources: list[dict[str, object]]) -> None:
    for source in sources:
        text = str(source["text"])
        for start, end in source["spans"]:  # type: ignore[attr-defined]
            assert 0 <= start < end <= len(text) and text[start:end].strip() == text[start:end]


@pytest.mark.backends
def test_ask_reports_what_backs_each_sentence(pipeline: Pipeline) -> None:
    with TestClient(create_app(pipeline.settings, pipeline)) as client:
        r = client.post("/ask", json={"question": "What does a cat eat?", "max_tokens": 40})
        assert r.status_code == 200, r.text
        body = r.json()
        assert {"abstained", "sentences", "unsupported", "language"} <= body.keys()
        assert body["language"] == "en"
        check_spans(body["sources"])
        if not body["abstained"]:
            cited = {s["number"] for s in body["sources"] if s["cited"]}
            backed = {n for s in body["sentences"] if s["supported"] for n in s["sources"]}
            assert backed and backed == cited
            assert any(s["spans"] for s in body["sources"] if s["cited"])

        far = client.post(
            "/ask",
            json={"question": "Quelle est la vitesse de la lumière ?", "max_tokens": 8, "min_score": 0.95},
        )
        assert far.status_code == 200
        assert far.json()["abstained"] and far.json()["language"] == "fr"
        assert "documents" in far.json()["answer"]  # said in French: "...dans les documents."

        with client.stream(
            "POST", "/ask", json={"question": "What does a cat eat?", "stream": True, "max_tokens": 24}
        ) as stream:
            lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
        done = json.loads(lines[-1][6:])
        assert "sentences" in done and "abstained" in done

        r = client.post(
            "/v1/chat/completions",
            json={
                "model": "default",
                "max_tokens": 24,
                "messages": [{"role": "user", "content": "What does a cat eat?"}],
            },
        )
        assert r.status_code == 200 and "sentences" in r.json()["attribution"]
        check_spans(r.json()["sources"])
