"""No other web site can write into the server or ask it: a browser request from another
origin is refused (403) before anything is read, a body must be declared JSON (415), and
without keys the server answers only to names a web page cannot point at it (DNS
rebinding). Clients that are not browsers, and the server's own page, work as before."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.origin import exposure_warnings
from rag.config import ServerSettings, Settings
from rag.pipeline import Pipeline

OWN = "http://testserver"  # the TestClient's origin
EVIL = "http://evil.example"
QUESTION = {"question": "What does a cat eat?", "max_tokens": 8}
CHAT = {
    "model": "default",
    "messages": [{"role": "user", "content": "What does a cat eat?"}],
    "max_tokens": 8,
}
# A browser's request from another site, in each way a browser may say so.
FOREIGN = [
    {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    {"Origin": EVIL},  # a browser that does not send Sec-Fetch-Site
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "null"},  # a sandboxed frame, a local file
    {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    {"Origin": "http://testserver:3000", "Sec-Fetch-Site": "same-site"},  # another port
    {"Origin": "http://testserver:3000"},
    {"Origin": "https://testserver"},  # another scheme
]


@pytest.fixture
def make_client(settings: Settings, echo_pipeline: Pipeline) -> Iterator[Any]:
    """Clients of a server with no keys (the default); `server` settings set first."""
    clients: list[TestClient] = []

    def make(**server: Any) -> TestClient:
        for name, value in server.items():
            setattr(settings.server, name, value)
        client = TestClient(create_app(settings, echo_pipeline))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Any) -> TestClient:
    client: TestClient = make_client()
    return client


def upload(client: TestClient, headers: dict[str, str], text: bytes = b"Planted text.\n") -> Any:
    return client.post("/ingest", files=[("files", ("planted.txt", text))], headers=headers)


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {
        "error": {
            "message": response.json()["error"]["message"],
            "type": response.json()["error"]["type"],
            "param": None,
            "code": code,
        }
    }


def nothing_ingested(client: TestClient, settings: Settings) -> None:
    assert client.get("/ingest").json()["data"] == []
    uploads = settings.server.upload_dir
    assert not uploads.exists() or not [p for p in uploads.rglob("*") if p.is_file()]


def answers(client: TestClient) -> int:
    """Answers generated so far, from the server's metrics."""
    lines = client.get("/metrics").text.splitlines()
    return sum(int(float(line.split()[-1])) for line in lines if line.startswith("rag_answers_total{"))


@pytest.mark.parametrize("headers", FOREIGN)
def test_another_site_cannot_ingest(
    client: TestClient, settings: Settings, shared: Path, headers: dict[str, str]
) -> None:
    refused(upload(client, headers), 403, "cross_site_request")
    path = json.dumps({"path": str(shared)})
    for content_type in ("text/plain", "application/json", "application/x-www-form-urlencoded"):
        r = client.post("/ingest", content=path, headers={**headers, "Content-Type": content_type})
        refused(r, 403, "cross_site_request")
    nothing_ingested(client, settings)


@pytest.mark.parametrize("headers", FOREIGN)
@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/ask", QUESTION),
        ("/v1/chat/completions", CHAT),
        ("/search", {"query": "cat"}),
        ("/v1/embeddings", {"input": "cat", "model": "default"}),
    ],
)
def test_another_site_cannot_ask(
    client: TestClient, headers: dict[str, str], route: str, body: dict[str, Any]
) -> None:
    for content_type in ("application/json", "text/plain"):
        r = client.post(route, content=json.dumps(body), headers={**headers, "Content-Type": content_type})
        refused(r, 403, "cross_site_request")
    assert answers(client) == 0


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH", "POST"])
@pytest.mark.parametrize("path", ["/indexes/default", "/indexes", "/ingest", "/v1/models", "/nowhere"])
def test_every_method_that_may_change_something_is_refused(
    client: TestClient, method: str, path: str
) -> None:
    r = client.request(method, path, headers=FOREIGN[0])
    refused(r, 403, "cross_site_request")
    assert client.request(method, path).status_code in (400, 404, 405)  # as before: no route, no body


def test_a_body_must_be_declared_json(client: TestClient, settings: Settings, shared: Path) -> None:
    path = json.dumps({"path": str(shared)}).encode()
    for headers in (
        {"Content-Type": "text/plain"},
        {"Content-Type": "text/plain;charset=UTF-8"},
        {},
        {"Content-Type": "application/x-www-form-urlencoded"},
    ):
        refused(client.post("/ingest", content=path, headers=headers), 415, "unsupported_media_type")
        for route, body in (("/ask", QUESTION), ("/v1/chat/completions", CHAT)):
            r = client.post(route, content=json.dumps(body), headers=headers)
            refused(r, 415, "unsupported_media_type")
    # Files only where files are taken.
    r = client.post("/ask", files=[("files", ("a.txt", b"x"))], data={"question": "x"})
    refused(r, 415, "unsupported_media_type")
    nothing_ingested(client, settings)
    assert answers(client) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": OWN, "Sec-Fetch-Site": "same-origin"},
        {"Origin": OWN},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "https://rag.example.com", "Sec-Fetch-Site": "same-origin"},
    ],
)
def test_the_own_page_and_plain_clients_still_work(
    client: TestClient, shared: Path, headers: dict[str, str]
) -> None:
    # (The last: the page behind a proxy that rewrites the Host, vouched for by the browser.)
    assert upload(client, headers).status_code == 202
    r = client.post("/ingest", json={"path": str(shared)}, headers=headers)
    assert r.status_code == 202, r.text
    assert client.post("/ask", json=QUESTION, headers=headers).status_code == 200
    r = client.post(
        "/ask",
        content=json.dumps(QUESTION),
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200
    assert client.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
    assert answers(client) == 3
    assert client.post("/ask", headers=headers).status_code == 400  # no body: as before
    # Reading is not refused: a link from another site to the page still opens it.
    assert client.get("/", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}).status_code == 200


def test_origins_configured_on_purpose_may_call(make_client: Any) -> None:
    client = make_client(cors_origins=["http://localhost:3000/"])
    cors = {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "cross-site"}
    preflight = client.options(
        "/ask",
        headers={
            **cors,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    r = client.post("/ask", json=QUESTION, headers=cors)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:3000"
    for other in ("http://localhost:3001", EVIL, "null"):
        r = client.post("/ask", json=QUESTION, headers={"Origin": other, "Sec-Fetch-Site": "cross-site"})
        refused(r, 403, "cross_site_request")
        assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (["null"], "not an origin"),
        (["http://x.org/app"], "not an origin"),
        (["localhost:3000"], "not an origin"),
    ],
)
def test_cors_origins_must_be_origins(value: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ServerSettings(cors_origins=value)


def test_cors_origins_are_written_as_browsers_send_them() -> None:
    assert ServerSettings(cors_origins=["HTTP://LocalHost:3000/", "*"]).cors_origins == [
        "http://localhost:3000",
        "*",
    ]


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "rag.evil.example.",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
    ],
)
def test_dns_rebinding_is_refused_without_keys(
    client: TestClient, settings: Settings, shared: Path, host: str
) -> None:
    # A page on evil.example, which then resolves to this machine: same-origin to the browser.
    origin = {"Host": host, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
    refused(client.get("/", headers={"Host": host}), 400, "invalid_host")
    refused(client.get("/ingest", headers={"Host": host}), 400, "invalid_host")
    refused(upload(client, origin), 400, "invalid_host")
    refused(client.post("/ingest", json={"path": str(shared)}, headers=origin), 400, "invalid_host")
    refused(client.post("/ask", json=QUESTION, headers=origin), 400, "invalid_host")
    nothing_ingested(client, settings)
    assert answers(client) == 0


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8000",
        "localhost:8000",
        "LOCALHOST",
        "[::1]:8000",
        "192.168.1.20",
        "[fe80::1]",
        "app.localhost:8000",
        "raghost:8000",
    ],
)
def test_addresses_and_local_names_are_answered(client: TestClient, host: str) -> None:
    assert client.get("/", headers={"Host": host}).status_code == 200
    headers = {"Host": host, "Origin": f"http://{host}"}
    assert client.post("/ask", json=QUESTION, headers=headers).status_code == 200


def test_names_configured_on_purpose_or_keys(make_client: Any) -> None:
    client = make_client(allowed_hosts=["RAG.example.com"])
    assert client.get("/", headers={"Host": "rag.example.com:8443"}).status_code == 200
    refused(client.get("/", headers={"Host": "evil.example"}), 400, "invalid_host")
    assert make_client(allowed_hosts=["*"]).get("/", headers={"Host": "evil.example"}).status_code == 200
    keyed = make_client(allowed_hosts=[], api_keys=["k1"])  # a page elsewhere has no key
    assert keyed.get("/", headers={"Host": "rag.example.com"}).status_code == 200
    assert keyed.post("/ask", json=QUESTION, headers={"Host": "rag.example.com"}).status_code == 401


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/health", "/v1/models", "/docs", "/nowhere"])
def test_no_response_may_be_framed_or_read_by_another_site(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cross-origin-resource-policy"] == "same-origin"
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.post(path, headers=FOREIGN[0])
    assert r.status_code == 403 and r.headers["x-frame-options"] == "DENY"


def test_the_page_cannot_be_framed_nor_opened_into(client: TestClient) -> None:
    r = client.get("/")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cross-origin-opener-policy"] == "same-origin"


def test_refusals_are_logged_and_counted(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="rag.access"):
        upload(client, FOREIGN[0])
        client.get("/", headers={"Host": "evil.example"})
    lines = [r.getMessage() for r in caplog.records if r.name == "rag.access"]
    assert "status=403" in lines[0] and f"refused=cross_site_request origin={EVIL}" in lines[0]
    assert "status=400" in lines[1] and "refused=invalid_host host=evil.example" in lines[1]
    assert 'rag_http_requests_total{method="POST",route="unmatched",status="403"} 1.0' in (
        client.get("/metrics").text
    )


@pytest.mark.parametrize(
    ("host", "keys", "loud"),
    [
        ("0.0.0.0", [], True),
        ("::", [], True),
        ("192.168.1.20", [], True),
        ("0.0.0.0", ["k"], False),
        ("127.0.0.1", [], False),
        ("localhost", [], False),
        ("::1", [], False),
    ],
)
def test_serving_beyond_loopback_without_keys_is_loud(
    settings: Settings,
    echo_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    host: str,
    keys: list[str],
    loud: bool,
) -> None:
    import uvicorn

    from rag_cli.main import app

    monkeypatch.setattr(uvicorn.Server, "run", lambda *args, **kwargs: None)  # not served: only started
    monkeypatch.setenv("RAG_INDEXES_DIR", str(settings.indexes_dir))
    monkeypatch.setenv("RAG_SERVER__API_KEYS", json.dumps(keys))
    result = CliRunner().invoke(app, ["serve", "--host", host])
    assert result.exit_code == 0, result.output
    assert ("without API keys" in result.stderr) is loud, result.stderr
    # The app's start-up says so in its log too (kept where the terminal is not).
    settings.server.host = host
    settings.server.api_keys = keys  # type: ignore[assignment]  # validated into SecretStr
    app = create_app(settings, echo_pipeline)
    with caplog.at_level(logging.WARNING, logger="api"), TestClient(app):
        pass
    warned = [r.getMessage() for r in caplog.records if "without API keys" in r.getMessage()]
    assert bool(warned) is loud
    if loud:
        assert f"listens on {host}" in warned[0] and "server.api_keys" in warned[0]


@pytest.mark.parametrize(
    "value", [["evil.example/path"], ["evil.example:8000"], ["http://evil.example"], [""]]
)
def test_allowed_hosts_are_names(value: list[str]) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        ServerSettings(allowed_hosts=value)


def test_opening_to_every_site_on_purpose_is_loud_too() -> None:
    assert exposure_warnings(ServerSettings()) == []
    for opened in ({"cors_origins": ["*"]}, {"allowed_hosts": ["*"]}):
        (warning,) = exposure_warnings(ServerSettings(**opened))
        assert "'*' without API keys" in warning
        assert exposure_warnings(ServerSettings(**opened, api_keys=["k"])) == []


def test_the_container_says_so_too() -> None:
    """The image and the compose file start `rag serve` on every interface, without keys
    by default: the warning is the first thing their logs show."""
    root = Path(__file__).parents[2]
    cmd = next(line for line in (root / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]["api"]
    assert compose["environment"]["RAG_SERVER__API_KEYS"] == "${RAG_SERVER__API_KEYS:-[]}"
    for command in (json.loads(cmd.removeprefix("CMD")), compose["command"]):
        assert command[:2] == ["rag", "serve"]
        server = ServerSettings(host=command[command.index("--host") + 1])
        assert "without API keys" in exposure_warnings(server)[0]
