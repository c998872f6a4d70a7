"""Domain diagnostics: how hard the backbone's tokenizer has to work on the user's words, against general English.

A backbone sees a word it knows as one piece and an unfamiliar word as several sub-word pieces (or as the unknown
token). Heavy fragmentation means the backbone's pre-training saw little of this vocabulary, which is evidence about
the domain, not a verdict on which strategy wins: the comparison itself is what decides that.

The tokenizer is taken as an argument (never imported here), so this module stays free of transformers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

REFERENCE_PACKAGE = "bertwise.evaluation"
REFERENCE_DIRECTORY = "reference"
REFERENCE_FILE = "general_english.txt"
REFERENCE_NAME = "general English (Wikipedia article leads, 2016, and Botchan ch. 1, 1919 translation)"
MOST_FRAGMENTED = 10

_MEASURES = ("texts", "words", "pieces_per_word", "share_words_3plus", "unknown_rate")
_FALLBACK_WORDS = re.compile(r"\w+|[^\w\s]")
# Keyed by the tokenizer's name_or_path and vocabulary size: the reference text is fixed, so its measurement is too.
_reference_cache: dict[tuple[str, int], dict[str, Any]] = {}


def fragmentation(tokenizer: Any, texts: Sequence[str], *, max_texts: int = 2000, seed: int = 0) -> dict[str, Any]:
    """How many sub-word pieces the tokenizer cuts the alphabetic words of ``texts`` into.

    Words come from the tokenizer's own normaliser and pre-tokenizer when it has them (fast tokenizers), so a
    "word" is exactly the unit the model's vocabulary is applied to; otherwise a ``\\w+|[^\\w\\s]`` regex splits
    them. Words without any letter (numbers, punctuation) are left out, because their splitting says nothing about
    the vocabulary of a domain. Rates are over word occurrences.
    """
    if max_texts < 1:
        raise ValueError(f"max_texts must be at least 1; got {max_texts}")
    chosen = _sample(texts, max_texts, seed)
    split = _fast_splitter(tokenizer)
    occurrences: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for text in chosen:
        for key, display in split(text) if split is not None else _regex_words(text):
            if any(character.isalpha() for character in display):
                occurrences[key] += 1
                shown.setdefault(key, display)
    pieces = _pieces(tokenizer, list(occurrences), fast=split is not None)
    unk = getattr(tokenizer, "unk_token", None)
    # Words the model reduces to nothing (control characters only) are not words it sees.
    counted = {key: count for key, count in occurrences.items() if pieces[key]}
    total = sum(counted.values())
    piece_total = sum(len(pieces[key]) * count for key, count in counted.items())
    three_plus = sum(count for key, count in counted.items() if len(pieces[key]) >= 3)
    unknown = sum(count for key, count in counted.items() if unk is not None and unk in pieces[key])
    # Only words the model cuts into two or more pieces are fragmented; a word kept whole (or read as one unknown
    # token, which the unknown rate counts) is not, however often it occurs.
    repeated = sorted(
        (key for key, count in counted.items() if count >= 2 and len(pieces[key]) >= 2),
        key=lambda key: (-len(pieces[key]), -counted[key], shown[key]),
    )
    return {
        "texts": len(chosen),
        "words": total,
        "pieces_per_word": _round(piece_total / total) if total else 0.0,
        "share_words_3plus": _round(three_plus / total) if total else 0.0,
        "unknown_rate": _round(unknown / total) if total else 0.0,
        "most_fragmented": [
            {"word": shown[key], "pieces": list(pieces[key]), "count": counted[key]}
            for key in repeated[:MOST_FRAGMENTED]
        ],
    }


def load_reference_text() -> list[str]:
    """The packaged general-English paragraphs, one per line (see reference/SOURCE.md for where they come from)."""
    path = resources.files(REFERENCE_PACKAGE).joinpath(REFERENCE_DIRECTORY).joinpath(REFERENCE_FILE)
    text = path.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def reference_fragmentation(tokenizer: Any) -> dict[str, Any]:
    """:func:`fragmentation` of the reference text, measured once per tokenizer in this process."""
    key = (str(getattr(tokenizer, "name_or_path", "") or f"object:{id(tokenizer)}"), _vocab_size(tokenizer))
    if key not in _reference_cache:
        paragraphs = load_reference_text()
        _reference_cache[key] = fragmentation(tokenizer, paragraphs, max_texts=len(paragraphs))
    return _reference_cache[key]


def domain_diagnostics(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    zero_shot_macro_f1: float | None,
    best_trained_macro_f1: float | None,
    max_texts: int = 2000,
) -> dict[str, Any]:
    """The ``diagnostics`` block of a result: fragmentation of the user's texts against general English, the gap
    between zero-shot and the best trained strategy (macro-F1 points), and plain-words evidence lines."""
    user = fragmentation(tokenizer, texts, max_texts=max_texts)
    reference = reference_fragmentation(tokenizer)
    ratio = (
        _round(user["pieces_per_word"] / reference["pieces_per_word"])
        if user["words"] and reference["pieces_per_word"]
        else None
    )
    gap = (
        round((best_trained_macro_f1 - zero_shot_macro_f1) * 100, 2)
        if zero_shot_macro_f1 is not None and best_trained_macro_f1 is not None
        else None
    )
    return {
        "tokenizer": {
            "user": {name: user[name] for name in _MEASURES},
            "reference": {"name": REFERENCE_NAME, **{name: reference[name] for name in _MEASURES}},
            "pieces_per_word_ratio": ratio,
            "most_fragmented": user["most_fragmented"],
        },
        "zero_shot_gap_points": gap,
        "summary": _summary(user, reference, ratio, gap, getattr(tokenizer, "unk_token", None)),
    }


def evidence_lines(diagnostics: dict[str, Any]) -> list[str]:
    """The summary's lines about the tokenizer (fragmentation, unknown tokens), which the recommendation cites as
    evidence; the zero-shot gap and the closing caution are left to the report."""
    summary = list(diagnostics.get("summary") or [])
    user = ((diagnostics.get("tokenizer") or {}).get("user")) or {}
    if not user.get("words"):
        return summary[:1]
    return summary[: 2 if user.get("unknown_rate", 0) > 0 else 1]


def _summary(
    user: dict[str, Any], reference: dict[str, Any], ratio: float | None, gap: float | None, unk: str | None
) -> list[str]:
    lines: list[str] = []
    if not user["words"]:
        lines.append("your texts contain no words with letters, so the tokenizer's fragmentation could not be measured")
    else:
        against = f", against {reference['pieces_per_word']:.2f} in general English ({ratio:.2f}x)" if ratio else ""
        lines.append(
            f"the tokenizer splits your words into {user['pieces_per_word']:.2f} pieces on average{against}; "
            f"{_percent(user['share_words_3plus'])} of your words break into 3 or more pieces "
            f"({_percent(reference['share_words_3plus'])} in general English)"
        )
        if user["unknown_rate"] > 0:
            token = unk or "the unknown token"
            lines.append(
                f"{_percent(user['unknown_rate'])} of your words contain {token}, characters the vocabulary does not "
                f"have ({_percent(reference['unknown_rate'])} in general English): the model cannot read those parts"
            )
    # The gap is stated, not judged: whether it matters is the paired comparison's call (see the recommendation),
    # which knows its interval; a verdict here could contradict it.
    if gap is not None:
        if gap >= 0:
            lines.append(f"the best trained strategy scores {gap:.1f} macro-F1 points above zero-shot")
        else:
            lines.append(f"zero-shot scores {-gap:.1f} macro-F1 points above the best trained strategy")
    lines.append(
        "fragmentation alone does not decide between strategies: it shows how familiar your vocabulary is to the "
        "backbone, while the scores above show what each strategy makes of it"
    )
    return lines


def _sample(texts: Sequence[str], max_texts: int, seed: int) -> list[str]:
    if len(texts) <= max_texts:
        return list(texts)
    picked = np.random.default_rng(seed).choice(len(texts), size=max_texts, replace=False)
    # Sorted so the sample keeps the file's order; which texts are picked depends on the seed alone.
    return [texts[int(index)] for index in np.sort(picked)]


def _fast_splitter(tokenizer: Any) -> Any:
    """A function text -> [(pre-token, shown word)] using the fast tokenizer's own pipeline, or None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre_tokenizer = getattr(backend, "pre_tokenizer", None)
    if backend is None or pre_tokenizer is None:
        return None
    normalizer = backend.normalizer

    def split(text: str) -> list[tuple[str, str]]:
        normalized = normalizer.normalize_str(text) if normalizer is not None else text
        # The pre-token string is what the model is applied to (byte-level BPE marks spaces in it, for one);
        # the offsets give the readable normalised word to show and to test for letters.
        return [
            (piece, normalized[start:end].strip()) for piece, (start, end) in pre_tokenizer.pre_tokenize_str(normalized)
        ]

    return split


def _regex_words(text: str) -> list[tuple[str, str]]:
    return [(word, word) for word in _FALLBACK_WORDS.findall(text)]


def _pieces(tokenizer: Any, words: list[str], *, fast: bool) -> dict[str, tuple[str, ...]]:
    """Pieces of each distinct word, computed once per word, without special tokens."""
    if fast:
        # Pre-tokens are already normalised and split; the model alone turns one into pieces, as in the pipeline.
        model = tokenizer.backend_tokenizer.model
        return {word: tuple(token.value for token in model.tokenize(word)) for word in words}
    return {word: tuple(tokenizer.tokenize(word)) for word in words}


def _vocab_size(tokenizer: Any) -> int:
    try:
        return len(tokenizer)
    except TypeError:
        return -1


def _round(value: float) -> float:
    return round(float(value), 4)


def _percent(fraction: float) -> str:
    if 0 < fraction < 0.01:
        return f"{fraction * 100:.1f}%"
    return f"{fraction * 100:.0f}%"
