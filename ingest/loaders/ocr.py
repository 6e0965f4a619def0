"""OCR of page images through Tesseract (the Debian package tesseract-ocr, with the
tesseract-ocr-eng and tesseract-ocr-fra language data). Used only when `ingest.ocr` is on."""

from __future__ import annotations

import shutil
from functools import lru_cache
from typing import Any

from rag.errors import LoaderError


def ocr_image(image: Any, languages: list[str]) -> str:
    """The text Tesseract reads in a PIL image, in the given languages (tessdata names)."""
    import pytesseract

    missing = [lang for lang in languages if lang not in _installed_languages()]
    if missing:
        raise LoaderError(
            f"OCR language data not installed: {', '.join(missing)} "
            f"(Debian packages tesseract-ocr-{missing[0]}...)"
        )
    try:
        return str(pytesseract.image_to_string(image, lang="+".join(languages)))
    except pytesseract.TesseractError as exc:
        raise LoaderError(f"OCR failed: {exc}") from exc


@lru_cache(maxsize=1)
def _installed_languages() -> frozenset[str]:
    import pytesseract

    if shutil.which("tesseract") is None:
        raise LoaderError("OCR needs the tesseract program (Debian package tesseract-ocr)")
    return frozenset(pytesseract.get_languages(config=""))
