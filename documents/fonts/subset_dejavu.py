"""Rebuild the bundled DejaVu subsets: `python -m documents.fonts.subset_dejavu SRC_DIR`.

The full DejaVu Sans faces take ~150 ms each to parse per PDF; these subsets (Latin, Greek,
Cyrillic, Armenian, Georgian, punctuation, currency) parse in ~15 ms and ship with the
package, so ticket PDFs look the same on every machine. SRC_DIR is a folder with
DejaVuSans.ttf and DejaVuSans-Bold.ttf (Debian: /usr/share/fonts/truetype/dejavu).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset, ttLib

RANGES: tuple[tuple[int, int], ...] = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x024F),  # Latin-1 Supplement, Latin Extended-A/B
    (0x02B0, 0x036F),  # spacing modifiers, combining diacritics
    (0x0370, 0x052F),  # Greek, Cyrillic (+ supplement)
    (0x0530, 0x058F),  # Armenian
    (0x10A0, 0x10FF),  # Georgian
    (0x1E00, 0x1FFF),  # Latin Extended Additional, Greek Extended
    (0x2000, 0x206F),  # General Punctuation
    (0x20A0, 0x20CF),  # Currency Symbols
    (0x2100, 0x214F),  # Letterlike Symbols
    (0x2190, 0x21FF),  # Arrows
    (0x2212, 0x2212),  # minus sign
)
FACES = {
    "DejaVuSans.ttf": "DejaVuSans-subset.ttf",
    "DejaVuSans-Bold.ttf": "DejaVuSans-Bold-subset.ttf",
}


def build(src_dir: Path, out_dir: Path) -> None:
    unicodes = [cp for low, high in RANGES for cp in range(low, high + 1)]
    for src_name, out_name in FACES.items():
        font = ttLib.TTFont(src_dir / src_name)
        options = subset.Options()
        options.drop_tables += ["GSUB", "GPOS", "GDEF", "FFTM", "kern"]
        options.hinting = False
        options.glyph_names = True
        options.notdef_outline = True
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=unicodes)
        subsetter.subset(font)
        font.save(out_dir / out_name)


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(__file__).parent)
