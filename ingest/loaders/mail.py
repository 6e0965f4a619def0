"""E-mail messages (`.eml`, the standard library's `email`): the message, then each
attachment as a document of its own (`Page.document` is its file name)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from ingest.loaders.base import Loader, Page
from ingest.loaders.web import html_to_markdown
from rag.errors import LoaderError

logger = logging.getLogger(__name__)

HEADERS = ("From", "To", "Cc", "Date")


class EmlLoader(Loader):
    """An e-mail: subject as heading, sender, recipients and date, then the body (plain
    text, else HTML); attachments follow as their own documents, read by their own loader."""

    suffixes = (".eml",)

    def pages(self, path: Path) -> Iterator[Page]:
        with open(path, "rb") as fh:
            message = BytesParser(policy=policy.default).parse(fh)
        if not isinstance(message, EmailMessage) or not message.keys():
            raise LoaderError("not an e-mail message (no headers)")
        yield from self._message(message, "")

    def _message(self, message: EmailMessage, prefix: str) -> Iterator[Page]:
        lines = [f"# {message.get('Subject', '(no subject)')}", ""]
        lines += [f"{name}: {message[name]}" for name in HEADERS if message[name]]
        body = message.get_body(preferencelist=("plain", "html"))
        text = ""
        if body is not None:
            content = body.get_content()
            text = html_to_markdown(content) if body.get_content_type() == "text/html" else content
        yield Page("\n".join(lines) + "\n\n" + text.strip(), markdown=True, document=prefix)
        taken: set[str] = set()
        with tempfile.TemporaryDirectory(prefix="rag-eml-") as tmp:
            for n, part in enumerate(message.iter_attachments(), start=1):
                name = attachment_name(part.get_filename() or "", n, taken)
                yield from self._attachment(part, n, name, Path(tmp), prefix)

    def _attachment(self, part: EmailMessage, n: int, name: str, tmp: Path, prefix: str) -> Iterator[Page]:
        document = f"{prefix}/{name}" if prefix else name
        if part.get_content_type() == "message/rfc822":
            inner = part.get_content()
            if isinstance(inner, EmailMessage):
                yield from self._message(inner, document)
            return
        loader = self.nested(Path(name))
        if loader is None:
            logger.info("attachment skipped document=%r: unsupported type", document)
            return
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return
        file = tmp / f"{n}{Path(name).suffix}"  # the loader goes by the suffix; the name is data
        file.write_bytes(payload)
        try:
            for page in loader.pages(file):
                inner_name = f"{document}/{page.document}" if page.document else document
                yield Page(page.text, page.number, page.markdown, inner_name, page.ocr)
        except LoaderError as exc:
            logger.warning("attachment unreadable document=%r reason=%s", document, exc)


def attachment_name(raw: str, n: int, taken: set[str]) -> str:
    """The name an attachment is stored under, inside its message: its file name, without
    folders or NUL (which no store keeps), never "." or "..", and not one an attachment
    before it in the message has (two documents under one key would overwrite each other)."""
    name = Path(raw.replace("\0", "")).name
    if name in ("", ".", ".."):
        name = f"attachment-{n}"
    unique, again = name, 1
    while unique in taken:
        again += 1
        unique = f"{Path(name).stem} ({again}){Path(name).suffix}"
    taken.add(unique)
    return unique
