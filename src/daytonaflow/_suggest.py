"""Close names for a misspelt one: the "did you mean" of unknown components, fields and settings."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_names(word: str, candidates: Iterable[str], *, limit: int = 3) -> list[str]:
    """The candidates closest to ``word``, closest first, compared without regard to case.

    Case is ignored because the usual slip is one letter's case (``createSandBox``); the
    candidates come back as they are spelt.
    """
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), candidate)
    folded = word.casefold()
    if folded in by_folded:
        # The same name but for case is the one meant: the others would only distract.
        return [by_folded[folded]]
    close = difflib.get_close_matches(folded, list(by_folded), n=limit)
    if not close:
        return []
    # A near miss (one letter off) makes the merely similar names noise: only those about as
    # close as the closest are offered.
    best = _similarity(folded, close[0])
    return [by_folded[name] for name in close if _similarity(folded, name) >= best - _TIER]


#: How much less similar than the closest name another may be and still be offered.
_TIER = 0.1


def _similarity(word: str, candidate: str) -> float:
    return difflib.SequenceMatcher(None, word, candidate).ratio()


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``did you mean "a" or "b"?`` for the names close to ``word``, or "" when none is."""
    close = close_names(word, candidates)
    if not close:
        return ""
    return "did you mean " + " or ".join(f'"{name}"' for name in close) + "?"
