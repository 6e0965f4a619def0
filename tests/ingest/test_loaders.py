from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.loaders import loader_for
from rag.errors import LoaderError
from tests.pdfs import blank_pdf, encrypted_pdf, text_pdf


def load(path: Path) -> list[tuple[str, int | None]]:
    loader = loader_for(path)
    assert loader is not None
    return [(p.text, p.number) for p in loader.pages(path)]


def test_pdf_pages_keep_numbers(tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "a.pdf", ["First page about apples.", "Second page about pears."])
    pages = load(pdf)
    assert [n for _, n in pages] == [1, 2]
    assert "pears" in pages[1][0]


def test_corrupt_pdf(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\n garbage \x00\x01 not really")
    with pytest.raises(LoaderError, match="PDF"):
        load(bad)


def test_encrypted_pdf(tmp_path: Path) -> None:
    src = text_pdf(tmp_path / "src.pdf", ["secret text"])
    with pytest.raises(LoaderError, match="password-protected"):
        load(encrypted_pdf(tmp_path / "locked.pdf", src))


def test_pdf_without_text_needs_ocr(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="OCR"):
        load(blank_pdf(tmp_path / "scan.pdf"))


def test_latin1_french_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "fr.txt"
    path.write_bytes("Le café est très apprécié à Noël, même en forêt.".encode("latin-1"))
    assert load(path)[0][0] == "Le café est très apprécié à Noël, même en forêt."


def test_utf16_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "u.txt"
    path.write_bytes("Größe und Übermut".encode("utf-16"))
    assert load(path)[0][0] == "Größe und Übermut"


def test_empty_and_binary(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"  \n")
    with pytest.raises(LoaderError, match="empty"):
        load(empty)
    binary = tmp_path / "bin.md"
    binary.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(LoaderError, match="binary"):
        load(binary)


def test_html_visible_text_only(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    path.write_text("<html><head><title>T</title><style>p{color:red}</style></head><body>"
                    "<h1>Title</h1><script>var secret=1;</script><p>Visible words.</p>"
                    "</body></html>")  # fmt: skip
    text = load(path)[0][0]
    assert "Visible words." in text and "# Title" in text
    assert "secret" not in text and "color" not in text


def test_docx(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Holidays", level=1)
    document.add_paragraph("Employees get twenty-five days of paid leave.")
    path = tmp_path / "h.docx"
    document.save(str(path))
    text = load(path)[0][0]
    assert "# Holidays" in text and "twenty-five days" in text


def test_csv_and_json(tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("name,city\nAda,London\nGrace,New York\n")
    assert "name: Grace; city: New York" in load(csv_path)[0][0]
    json_path = tmp_path / "t.json"
    json_path.write_text(json.dumps({"product": "lamp", "price": 12}))
    assert '"product": "lamp"' in load(json_path)[0][0]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"a": 1}\n{"b": 2}\n')
    assert '"b": 2' in load(jsonl)[0][0]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(LoaderError, match="invalid JSON"):
        load(broken)


def test_unknown_suffix() -> None:
    assert loader_for(Path("x.exe")) is None
    assert loader_for(Path("X.PDF")) is not None


def test_encrypted_pdf_with_empty_password_is_read(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    src = text_pdf(tmp_path / "src.pdf", ["open to all readers"])
    writer = PdfWriter(clone_from=PdfReader(str(src)))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    path = tmp_path / "open.pdf"
    with open(path, "wb") as fh:
        writer.write(fh)
    assert "open to all readers" in load(path)[0][0]


def test_text_blocks_end_between_paragraphs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.loaders as module
    from ingest.chunking import Chunker
    from ingest.loaders import Page

    monkeypatch.setattr(module, "SNIFF_BYTES", 300)
    monkeypatch.setattr(module, "BLOCK_BYTES", 500)
    paragraphs = [f"# Part {i}" if i % 7 == 0 else
                  " ".join(f"Sentence {i}.{j} is here." for j in range(i % 5 + 1))
                  for i in range(200)]  # fmt: skip
    text = "\n\n".join(paragraphs) + "\n"
    path = tmp_path / "long.md"
    path.write_text(text)
    pages = [t for t, _ in load(path)]
    assert len(pages) > 10 and "".join(pages) == text
    assert all(p.endswith("\n\n") for p in pages[:-1])
    chunker = Chunker(60, 10)
    assert list(chunker.chunks([Page(p) for p in pages], "long.md")) == list(
        chunker.chunks([Page(text)], "long.md")
    )

    path.write_text(text + "x" * 1200 + " end")  # a run with no break, longer than a block
    pages = [t for t, _ in load(path)]
    assert "".join(pages) == text + "x" * 1200 + " end"
    assert max(len(p) for p in pages) <= 2 * 500
