"""Rebuild faq-fr/ or faq-en/corpus.jsonl from Debian's FAQ packages.

    python bench/data/debian_faq.py fr|en [path/to/debian-faq.LANG.txt.gz]

Without a path, the package (`debian-faq-fr`, or `debian-faq` for English) is fetched with
`apt-get download` and unpacked in a temporary folder. Each numbered section of the FAQ
("2.3. Où et comment ...") is one document: id = its number, title = its heading, text =
its body. Both languages are version 11.1 and number their sections alike.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
PACKAGES = {"fr": "debian-faq-fr", "en": "debian-faq"}
SECTION = re.compile(r"^(\d+(?:\.\d+)+)\.[\s\u00a0]+(.+)$")


def faq_text(lang: str, given: list[str]) -> str:
    if given:
        return gzip.decompress(Path(given[0]).read_bytes()).decode("utf-8")
    package = PACKAGES[lang]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", package], cwd=tmp, check=True)
        deb = next(Path(tmp).glob(f"{package}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), "x"], cwd=tmp, check=True)
        path = Path(tmp, f"x/usr/share/doc/debian/FAQ/debian-faq.{lang}.txt.gz")
        return gzip.decompress(path.read_bytes()).decode("utf-8")


def sections(text: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("1.1.") and i > 100)
    docs: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    body: list[str] = []
    in_title = False
    for line in lines[start:]:
        match = SECTION.match(line)
        if match:
            if current is not None:
                current["text"] = _clean("\n".join(body))
                docs.append(current)
            current, body = {"_id": match.group(1), "title": match.group(2).strip()}, []
            in_title = True
            continue
        if in_title and current is not None:  # a long heading goes on until a blank line
            if line.strip():
                current["title"] += " " + " ".join(line.replace("\u00a0", " ").split())
                continue
            in_title = False
        if current is not None and re.match(r"^\d+\.[\s\u00a0]", line):  # a chapter heading
            continue
        body.append(line)
    if current is not None:
        current["text"] = _clean("\n".join(body))
        docs.append(current)
    return [d for d in docs if len(d["text"]) > 40]


def _clean(text: str) -> str:
    text = text.replace("\u00a0", " ")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in PACKAGES:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(PACKAGES)} [debian-faq.LANG.txt.gz]")
    lang = sys.argv[1]
    docs = sections(faq_text(lang, sys.argv[2:]))
    target = HERE / f"faq-{lang}" / "corpus.jsonl"
    target.parent.mkdir(exist_ok=True)
    with open(target, "w", encoding="utf-8") as out:
        for doc in docs:
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"{len(docs)} sections written to {target}")


if __name__ == "__main__":
    main()
