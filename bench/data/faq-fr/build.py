"""Rebuild corpus.jsonl from Debian's debian-faq-fr package (the French Debian FAQ).

    python bench/data/faq-fr/build.py [path/to/debian-faq.fr.txt.gz]

Without a path, the package is fetched with `apt-get download debian-faq-fr` and unpacked
in a temporary folder. Each numbered section of the FAQ ("2.3. Où et comment ...") is one
document: id = its number, title = its heading, text = its body.
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
SECTION = re.compile(r"^(\d+(?:\.\d+)+)\.[\s\u00a0]+(.+)$")


def faq_text(argv: list[str]) -> str:
    if argv:
        return gzip.decompress(Path(argv[0]).read_bytes()).decode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "debian-faq-fr"], cwd=tmp, check=True)
        deb = next(Path(tmp).glob("debian-faq-fr_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), "x"], cwd=tmp, check=True)
        path = Path(tmp, "x/usr/share/doc/debian/FAQ/debian-faq.fr.txt.gz")
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
    docs = sections(faq_text(sys.argv[1:]))
    with open(HERE / "corpus.jsonl", "w", encoding="utf-8") as out:
        for doc in docs:
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"{len(docs)} sections written to {HERE / 'corpus.jsonl'}")


if __name__ == "__main__":
    main()
