"""Word-level differences between two texts, for side-by-side comparison."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

#: (text, differs) pieces; joined they give back the original text.
Pieces = list[tuple[str, bool]]

_WORDS = re.compile(r"\s+|[^\s]+")


def word_diff(left: str, right: str) -> tuple[Pieces, Pieces]:
    """Both texts cut into pieces, each marked True where it differs from the other side."""
    a, b = _WORDS.findall(left), _WORDS.findall(right)
    left_pieces: Pieces = []
    right_pieces: Pieces = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        same = tag == "equal"
        if i2 > i1:
            left_pieces.append(("".join(a[i1:i2]), not same))
        if j2 > j1:
            right_pieces.append(("".join(b[j1:j2]), not same))
    return left_pieces, right_pieces
