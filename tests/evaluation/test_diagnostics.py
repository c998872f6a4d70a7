"""Domain diagnostics: tokenizer fragmentation of the user's texts against the packaged general-English reference."""

from __future__ import annotations

from typing import Any

import pytest

from bertwise.backbone.encoder import load_tokenizer
from bertwise.backbone.resolve import resolve_backbone
from bertwise.evaluation.diagnostics import (
    REFERENCE_NAME,
    domain_diagnostics,
    evidence_lines,
    fragmentation,
    load_reference_text,
    reference_fragmentation,
)
from tests.conftest import TOY_TEXTS

JARGON = [
    "Thrombocytopenia and hepatosplenomegaly were noted alongside pneumonoultramicroscopicsilicovolcanoconiosis.",
    "Immunohistochemistry showed dermatofibrosarcoma protuberans with hyperphenylalaninemia and thrombocytopenia.",
    "Hepatosplenomegaly with glomerulonephritis; immunohistochemistry negative, thrombocytopenia persistent.",
    "Dipalmitoylphosphatidylcholine and glutamyltranspeptidase levels rose despite methylprednisolone.",
    "Esophagogastroduodenoscopy revealed lymphangioleiomyomatosis; glomerulonephritis was excluded.",
]
EVERYDAY = [
    *[text for examples in TOY_TEXTS.values() for text in examples],
    "I went to the shop this morning to buy some milk and bread.",
    "My sister called me last night because she had lost her keys again.",
    "We are going to visit our friends in the city next weekend.",
    "The children played in the park until it started to rain.",
    "Could you tell me how long the train takes to get there?",
    "He said the new job was harder than he had expected, but he liked it.",
]
# Letters (str.isalpha is true) from scripts that the uncased BERT vocabulary does not cover.
ETHIOPIC, CHEROKEE = "ሰላም", "ᏣᎳᎩ"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return load_tokenizer(resolve_backbone(None, pooling="auto").path)


def test_reference_text_is_real_prose_of_the_promised_size() -> None:
    paragraphs = load_reference_text()
    words = sum(len(paragraph.split()) for paragraph in paragraphs)
    assert 3000 <= words <= 8000
    assert len(paragraphs) >= 40
    # Rebuilt paragraphs, not wrapped lines: each is a few sentences long.
    assert min(len(paragraph.split()) for paragraph in paragraphs) >= 5
    assert sum(len(paragraph.split()) for paragraph in paragraphs) / len(paragraphs) > 60
    assert not any("{{" in p or "[[" in p or "|" in p for p in paragraphs), "wiki markup left in the reference"


def test_reference_fragments_little_and_is_cached(tokenizer: Any) -> None:
    reference = reference_fragmentation(tokenizer)
    assert reference["texts"] == len(load_reference_text())
    assert 1.0 < reference["pieces_per_word"] < 1.2
    assert reference["unknown_rate"] == 0.0
    assert reference_fragmentation(tokenizer) is reference


def test_jargon_fragments_much_more_than_general_english(tokenizer: Any) -> None:
    user = fragmentation(tokenizer, JARGON)
    reference = reference_fragmentation(tokenizer)
    assert user["pieces_per_word"] / reference["pieces_per_word"] > 1.5
    assert user["share_words_3plus"] > 3 * reference["share_words_3plus"]
    # Case variants are one word: the tokenizer's normaliser lowercases, and the count says so.
    fragmented = {entry["word"]: entry for entry in user["most_fragmented"]}
    assert fragmented["thrombocytopenia"]["count"] == 3
    assert fragmented["thrombocytopenia"]["pieces"] == tokenizer.tokenize("thrombocytopenia")
    pieces = [len(entry["pieces"]) for entry in user["most_fragmented"]]
    assert pieces == sorted(pieces, reverse=True)
    assert all(entry["count"] >= 2 for entry in user["most_fragmented"])


def test_everyday_sentences_fragment_like_general_english(tokenizer: Any) -> None:
    result = domain_diagnostics(tokenizer, EVERYDAY, zero_shot_macro_f1=None, best_trained_macro_f1=None)
    assert 0.8 <= result["tokenizer"]["pieces_per_word_ratio"] <= 1.25


def test_only_words_with_letters_are_counted(tokenizer: Any) -> None:
    result = fragmentation(tokenizer, ["In 2015 , the price rose 42 % !!! -- 1990s prices , again ."])
    # in, the, price, rose, 1990s, prices, again: numbers and punctuation say nothing about the vocabulary.
    assert result["words"] == 7
    assert fragmentation(tokenizer, ["2015 , !!! 42"])["words"] == 0


def test_sampling_is_seeded_and_deterministic(tokenizer: Any) -> None:
    # Text i holds i+1 words, so the word count tells which texts were drawn.
    texts = [" ".join(["word"] * (i + 1)) for i in range(60)]
    first = fragmentation(tokenizer, texts, max_texts=10, seed=3)
    assert first["texts"] == 10
    assert fragmentation(tokenizer, texts, max_texts=10, seed=3) == first
    assert fragmentation(tokenizer, texts, max_texts=10, seed=4)["words"] != first["words"]
    everything = fragmentation(tokenizer, texts, max_texts=60)
    assert everything["texts"] == 60
    assert everything["words"] == 60 * 61 // 2


def test_unknown_rate_counts_the_unknown_token(tokenizer: Any) -> None:
    assert tokenizer.tokenize(ETHIOPIC) == [tokenizer.unk_token]
    result = fragmentation(tokenizer, [f"hello {ETHIOPIC} world", f"{CHEROKEE} is written here", "plain words"])
    assert result["words"] == 9
    assert result["unknown_rate"] == pytest.approx(2 / 9, abs=1e-4)
    summary = domain_diagnostics(
        tokenizer, [f"hello {ETHIOPIC} world"], zero_shot_macro_f1=None, best_trained_macro_f1=None
    )["summary"]
    assert any("[UNK]" in line and "33%" in line for line in summary)


def test_contract_and_summary_carry_the_numbers(tokenizer: Any) -> None:
    result = domain_diagnostics(tokenizer, JARGON, zero_shot_macro_f1=0.41, best_trained_macro_f1=0.695)
    assert set(result) == {"tokenizer", "zero_shot_gap_points", "summary"}
    block = result["tokenizer"]
    assert set(block) == {"user", "reference", "pieces_per_word_ratio", "most_fragmented"}
    measures = {"texts", "words", "pieces_per_word", "share_words_3plus", "unknown_rate"}
    assert set(block["user"]) == measures
    assert set(block["reference"]) == measures | {"name"}
    assert block["reference"]["name"] == REFERENCE_NAME
    assert block["user"]["texts"] == len(JARGON)
    assert block["pieces_per_word_ratio"] == pytest.approx(
        block["user"]["pieces_per_word"] / block["reference"]["pieces_per_word"], abs=1e-3
    )
    assert result["zero_shot_gap_points"] == pytest.approx(28.5)

    summary = result["summary"]
    assert 2 <= len(summary) <= 4
    first = summary[0]
    assert f"{block['user']['pieces_per_word']:.2f} pieces" in first
    assert f"{block['reference']['pieces_per_word']:.2f} in general English" in first
    assert f"({block['pieces_per_word_ratio']:.2f}x)" in first
    assert f"{block['user']['share_words_3plus'] * 100:.0f}% of your words" in first
    assert any("28.5 macro-F1 points above zero-shot" in line for line in summary)
    assert "does not decide" in summary[-1]


def test_gap_is_none_unless_both_scores_are_given(tokenizer: Any) -> None:
    for zero_shot, trained in [(None, None), (0.5, None), (None, 0.7)]:
        result = domain_diagnostics(tokenizer, EVERYDAY, zero_shot_macro_f1=zero_shot, best_trained_macro_f1=trained)
        assert result["zero_shot_gap_points"] is None
        assert not any("zero-shot" in line for line in result["summary"])
        assert len(result["summary"]) == 2


def test_the_gap_is_stated_not_judged(tokenizer: Any) -> None:
    # Whether a gap matters is the paired comparison's call: a verdict here ("labeled data matters") contradicted a
    # recommendation that weighed the same gap with its interval.
    small = domain_diagnostics(tokenizer, EVERYDAY, zero_shot_macro_f1=0.80, best_trained_macro_f1=0.82)
    assert small["zero_shot_gap_points"] == pytest.approx(2.0)
    assert "the best trained strategy scores 2.0 macro-F1 points above zero-shot" in small["summary"]
    large = domain_diagnostics(tokenizer, EVERYDAY, zero_shot_macro_f1=0.40, best_trained_macro_f1=0.82)
    assert "the best trained strategy scores 42.0 macro-F1 points above zero-shot" in large["summary"]
    negative = domain_diagnostics(tokenizer, EVERYDAY, zero_shot_macro_f1=0.9, best_trained_macro_f1=0.85)
    assert negative["zero_shot_gap_points"] == pytest.approx(-5.0)
    assert "zero-shot scores 5.0 macro-F1 points above the best trained strategy" in negative["summary"]
    for result in (small, large, negative):
        assert not any("labeled data" in line or "matters" in line for line in result["summary"])


def test_evidence_lines_are_the_tokenizer_lines(tokenizer: Any) -> None:
    plain = domain_diagnostics(tokenizer, EVERYDAY, zero_shot_macro_f1=0.8, best_trained_macro_f1=0.82)
    assert evidence_lines(plain) == plain["summary"][:1]
    assert "pieces on average" in evidence_lines(plain)[0]
    unknown = domain_diagnostics(
        tokenizer, [f"hello {ETHIOPIC} world"], zero_shot_macro_f1=0.8, best_trained_macro_f1=0.82
    )
    assert evidence_lines(unknown) == unknown["summary"][:2]
    assert "[UNK]" in evidence_lines(unknown)[1]
    empty = domain_diagnostics(tokenizer, ["123"], zero_shot_macro_f1=0.8, best_trained_macro_f1=0.82)
    assert evidence_lines(empty) == [empty["summary"][0]]
    assert "no words with letters" in evidence_lines(empty)[0]


# Question-style texts like the GARD questions where the report listed what, the and is as "most fragmented".
QUESTIONS = [
    "What is the treatment for dermatofibrosarcoma protuberans?",
    "What is the outlook for dermatofibrosarcoma protuberans?",
    "What are the symptoms of hyperphenylalaninemia?",
    "Is hyperphenylalaninemia inherited?",
    "What is the cause of the disease?",
    "Is the disease inherited?",
]


def test_most_fragmented_lists_only_words_the_real_tokenizer_splits(tokenizer: Any) -> None:
    result = fragmentation(tokenizer, QUESTIONS)
    listed = result["most_fragmented"]
    assert {entry["word"] for entry in listed} == {"dermatofibrosarcoma", "protuberans", "hyperphenylalaninemia"}
    for entry in listed:
        assert entry["pieces"] == tokenizer.tokenize(entry["word"])
        assert len(entry["pieces"]) >= 2
    # Seen often, but each one piece: never "fragmented".
    for word in ("what", "is", "the", "disease", "inherited"):
        assert tokenizer.tokenize(word) == [word]
    # Only whole-word texts: nothing to list, whatever the counts.
    assert fragmentation(tokenizer, ["What is the cause?", "What is the cause?"])["most_fragmented"] == []


def test_texts_without_words_give_no_ratio(tokenizer: Any) -> None:
    assert fragmentation(tokenizer, [])["words"] == 0
    result = domain_diagnostics(tokenizer, ["123 456", "!!!"], zero_shot_macro_f1=None, best_trained_macro_f1=None)
    assert result["tokenizer"]["user"]["pieces_per_word"] == 0.0
    assert result["tokenizer"]["pieces_per_word_ratio"] is None
    assert "no words with letters" in result["summary"][0]


def test_max_texts_must_be_positive(tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="max_texts"):
        fragmentation(tokenizer, ["text"], max_texts=0)


def tiny_wordpiece_tokenizer() -> Any:
    """A fast BERT tokenizer over a handful of words and pieces, built in memory (no files, no downloads)."""
    from transformers import BertTokenizer

    words = sorted({word for examples in TOY_TEXTS.values() for text in examples for word in text.split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "frag", "##ment", "##ation", "##s"]
    return BertTokenizer(vocab={token: index for index, token in enumerate(vocab)}, do_lower_case=True)


def test_tiny_wordpiece_tokenizer() -> None:
    """Toy texts are all in the tiny vocabulary (one piece each); other words split into pieces or become [UNK]."""
    tiny = tiny_wordpiece_tokenizer()
    known = fragmentation(tiny, [text for examples in TOY_TEXTS.values() for text in examples])
    assert known["pieces_per_word"] == 1.0
    assert known["share_words_3plus"] == 0.0
    assert known["unknown_rate"] == 0.0
    mixed = fragmentation(tiny, ["The Fragmentation and the zebra", "frags: the zebra won"])
    # the x3, and, won: 1 piece each; fragmentation: 3; frags: 2; zebra x2: [UNK]. 9 words, 12 pieces.
    assert mixed["words"] == 9
    assert mixed["pieces_per_word"] == pytest.approx(12 / 9, abs=1e-4)
    assert mixed["share_words_3plus"] == pytest.approx(1 / 9, abs=1e-4)
    assert mixed["unknown_rate"] == pytest.approx(2 / 9, abs=1e-4)
    # Only words seen twice and cut into 2 or more pieces qualify: "the" (one piece) and "zebra" (one unknown
    # token, counted by the unknown rate) are not fragmented.
    assert mixed["most_fragmented"] == []
    split = fragmentation(tiny, ["frags and fragmentation", "fragmentation, frags, frags", "the the"])
    assert split["most_fragmented"] == [
        {"word": "fragmentation", "pieces": ["frag", "##ment", "##ation"], "count": 2},
        {"word": "frags", "pieces": ["frag", "##s"], "count": 3},
    ]


class ChunkTokenizer:
    """A slow-style tokenizer (no backend_tokenizer): three-letter chunks, [UNK] for any word with a 'q'."""

    unk_token = "[UNK]"
    name_or_path = "chunk-tokenizer"

    def tokenize(self, word: str) -> list[str]:
        if "q" in word.lower():
            return [self.unk_token]
        return [word[i : i + 3] for i in range(0, len(word), 3)]


def test_regex_fallback_for_tokenizers_without_a_pre_tokenizer() -> None:
    result = fragmentation(ChunkTokenizer(), ["Fragmentation, again! 42 cats.", "Quiet fragmentation..."])
    # Words: Fragmentation, again, cats, Quiet, fragmentation; "42" and punctuation are skipped.
    assert result["words"] == 5
    assert result["pieces_per_word"] == pytest.approx((5 + 2 + 2 + 1 + 5) / 5)
    assert result["share_words_3plus"] == pytest.approx(2 / 5)
    assert result["unknown_rate"] == pytest.approx(1 / 5)
    # No normaliser, so "Fragmentation" and "fragmentation" stay two words, each seen once.
    assert result["most_fragmented"] == []
    reference = domain_diagnostics(ChunkTokenizer(), ["cats"], zero_shot_macro_f1=None, best_trained_macro_f1=None)
    assert reference["tokenizer"]["reference"]["words"] > 3000
