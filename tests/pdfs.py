"""Tiny PDFs made on the fly: text pages, ruled tables, scans, no-text pages, encrypted ones."""

from __future__ import annotations

from pathlib import Path


def text_pdf(path: Path, pages: list[str]) -> Path:
    """A valid PDF of Helvetica text (WinAnsi, so accents work), one line per line of text."""
    contents = []
    for text in pages:
        lines = [f"({_escape(line)}) Tj 0 -16 Td" for line in text.split("\n")]
        contents.append(f"BT /F1 12 Tf 72 720 Td {' '.join(lines)} ET")
    return _pdf(path, contents)


def table_pdf(path: Path, intro: str, rows: list[list[str]], outro: str) -> Path:
    """A page with a line of text, a table ruled on every side of every cell, and another line."""
    ops = [f"BT /F1 12 Tf 72 740 Td ({_escape(intro)}) Tj ET"]
    width, height, top, left = 120, 20, 700, 72
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            x, y = left + c * width, top - (r + 1) * height
            ops.append(f"{x} {y} {width} {height} re S")
            ops.append(f"BT /F1 10 Tf {x + 4} {y + 6} Td ({_escape(cell)}) Tj ET")
    ops.append(f"BT /F1 12 Tf 72 {top - (len(rows) + 2) * height} Td ({_escape(outro)}) Tj ET")
    return _pdf(path, ["\n".join(ops)])


def scan_pdf(path: Path, lines: list[str]) -> Path:
    """A page that is only an image of text (no text layer), as a scanner makes it."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=56)
    for i, line in enumerate(lines):
        draw.text((150, 200 + i * 110), line, fill=0, font=font)
    image.save(path, "PDF", resolution=200)
    return path


def _pdf(path: Path, contents: list[str]) -> Path:
    pages = contents
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        content = text.encode("cp1252")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def blank_pdf(path: Path) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


def encrypted_pdf(path: Path, source: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(str(source)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
