"""Font choice for PDFs: built-in Helvetica when the text allows it, bundled DejaVu otherwise.

fpdf2 parses a TrueType font anew for every document (it cannot share a parsed font
between documents, because subsetting at output mutates it): ~45 ms per face even for the
bundled subsets, against nothing for the built-in Type1 Helvetica. Most tickets only need
Windows-1252, so they take the fast path; names in other scripts get DejaVu Sans, which
PDF viewers show the same on every machine because it is embedded.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF

FONT_DIR = Path(__file__).parent / "fonts"
_REGULAR = FONT_DIR / "DejaVuSans-subset.ttf"
_BOLD = FONT_DIR / "DejaVuSans-Bold-subset.ttf"
_CORE_ENCODING = "cp1252"  # what fpdf2 core fonts can show (WinAnsiEncoding)
_UNICODE_FAMILY = "dejavu"
_REPLACEMENT = "?"


@dataclass(frozen=True)
class Typeface:
    """The families a document was set up with, and how text must be cleaned for them."""

    family: str
    mono: str
    unicode: bool

    def clean(self, text: str) -> str:
        """NFC-normalise; with the bundled font, replace what it has no glyph for."""
        text = unicodedata.normalize("NFC", text)
        if not self.unicode:
            return text
        covered = _unicode_coverage()
        return "".join(ch if ord(ch) in covered or ch in "\n\t" else _REPLACEMENT for ch in text)


@cache
def _unicode_coverage() -> frozenset[int]:
    """Code points both bundled faces can draw (read once per process)."""
    maps = []
    for path in (_REGULAR, _BOLD):
        font = ttLib.TTFont(path, lazy=True)
        maps.append(set(font.getBestCmap()))
        font.close()
    return frozenset(maps[0] & maps[1])


def _fits_core(texts: Iterable[str]) -> bool:
    try:
        for text in texts:
            unicodedata.normalize("NFC", text).encode(_CORE_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def start_pdf(texts: Iterable[str]) -> tuple[FPDF, Typeface]:
    """A new A4 document whose fonts can show every string in `texts`."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_compression(True)
    pdf.set_creator("ticketops")
    if _fits_core(texts):
        pdf.core_fonts_encoding = _CORE_ENCODING
        return pdf, Typeface(family="helvetica", mono="courier", unicode=False)
    pdf.add_font(_UNICODE_FAMILY, "", _REGULAR)
    pdf.add_font(_UNICODE_FAMILY, "B", _BOLD)
    return pdf, Typeface(family=_UNICODE_FAMILY, mono=_UNICODE_FAMILY, unicode=True)
