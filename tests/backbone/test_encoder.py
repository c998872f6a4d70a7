from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bertwise.backbone.encoder import (
    CHARS_PER_TOKEN,
    Encoder,
    bounded_texts,
    load_encoder,
    load_tokenizer,
    tokenize,
)
from bertwise.backbone.resolve import resolve_backbone
from tests.conftest import TOY_TEXTS


def test_padding_does_not_change_embeddings(tiny_bert: str) -> None:
    """A text encoded alone equals the same text encoded in a batch with a much longer one."""
    encoder = Encoder(resolve_backbone(tiny_bert), device="cpu")
    short, long = "bake the bread", " ".join(["the team won the football match"] * 5)
    alone = encoder._encode_uncached([short], False, "")
    together = encoder._encode_uncached([short, long], False, "")
    np.testing.assert_allclose(alone[0], together[0], atol=1e-5)


def test_truncated_texts_are_counted(tiny_bert: str) -> None:
    encoder = load_encoder(tiny_bert, "auto", "cpu")
    result = tokenize(encoder.tokenizer, ["short text", "the " * 100], max_length=16)
    assert result.truncated == 1
    assert max(len(ids) for ids in result.input_ids) == 16


def test_embeddings_are_remembered_per_text(tiny_bert: str) -> None:
    encoder = Encoder(resolve_backbone(tiny_bert), device="cpu")
    first = encoder.encode(["a", "b", "a"])
    assert len(encoder._memo) == 2
    np.testing.assert_array_equal(first[0], first[2])


@pytest.mark.integration
@pytest.mark.parametrize(("precision", "least_cosine"), [("float32", 0.9999), ("bfloat16", 0.999)])
def test_embedded_model_matches_sentence_transformers(precision: str, least_cosine: float) -> None:
    """Parity with sentence-transformers' float32 encode on the real model, for every text.

    bfloat16 is held to the speed issue's bar (0.999); on a CPU without bfloat16 units it is emulated, slowly.
    """
    sentence_transformers = pytest.importorskip("sentence_transformers")
    texts = ["How do I activate my card?", "what is the capital of France", "word " * 400, "ok"]
    ours = load_encoder(None, "auto", "cpu", precision).encode(texts, cache=False)
    reference = sentence_transformers.SentenceTransformer(resolve_backbone(None).path, device="cpu").encode(texts)
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= least_cosine


# Bounded tokenization -------------------------------------------------------------------------------------------------

ADVERSARIAL = [
    "the team won the match " * 60,
    "a" + " " * 3000 + "the team won " * 40,  # a long run of spaces
    "x" * 5000 + " the team won" * 40,  # a very long word first (BERT: one [UNK])
    "the team " + "y" * 3000 + " z" * 200,  # ... and in the middle
    "the" + " " * 200 + "\t\n" * 100 + "team won " * 40,  # other whitespace
    "天气很好今天下雨" * 400,  # CJK without spaces
    "天气 很好 今天 下雨 " * 200,
    "👍🏽 👨‍👩‍👧 family 🇫🇷 " * 150,  # emoji with modifiers, ZWJ sequences, flags
    "cafe\u0301 na\u00efve\u00a0caf\u00e9 " * 200,  # combining marks, no-break spaces
    "the team won" + " " * 4000,  # trailing spaces
    "won." * 2000,  # punctuation, no spaces
    "short text",
    "",
]


def _byte_level_bpe() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([t for ts in TOY_TEXTS.values() for t in ts] * 5, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def _unigram_metaspace() -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=120, special_tokens=["<unk>", "<pad>"], unk_token="<unk>")
    tokenizer.train_from_iterator([t for ts in TOY_TEXTS.values() for t in ts] * 5, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>")


@pytest.fixture(scope="module")
def tokenizers(tiny_bert: str) -> dict[str, Any]:
    return {
        "wordpiece": load_tokenizer(tiny_bert),
        "embedded": load_tokenizer(resolve_backbone(None).path),
        "byte-level-bpe": _byte_level_bpe(),
        "unigram-metaspace": _unigram_metaspace(),
    }


def _uncut(tokenizer: Any, texts: list[str], max_length: int, pairs: list[str] | None = None) -> tuple[Any, int]:
    encoded = tokenizer(
        texts, pairs, truncation="only_first" if pairs else True, max_length=max_length, padding=False, verbose=False
    )
    return encoded["input_ids"], sum(1 for encoding in encoded.encodings if encoding.overflowing)


@pytest.mark.parametrize("name", ["wordpiece", "embedded", "byte-level-bpe", "unigram-metaspace"])
@pytest.mark.parametrize("max_length", [8, 64])
def test_cut_texts_give_exactly_the_ids_of_whole_texts(tokenizers: dict[str, Any], name: str, max_length: int) -> None:
    tokenizer = tokenizers[name]
    cut = bounded_texts(tokenizer, ADVERSARIAL, max_length)
    assert sum(len(a) < len(b) for a, b in zip(cut, ADVERSARIAL, strict=True)) >= 5  # the bound did cut
    result = tokenize(tokenizer, ADVERSARIAL, max_length)
    assert (result.input_ids, result.truncated) == _uncut(tokenizer, ADVERSARIAL, max_length)
    pairs = ["this text is about sports."] * len(ADVERSARIAL)
    result = tokenize(tokenizer, ADVERSARIAL, max_length + 16, text_pairs=pairs)
    assert (result.input_ids, result.truncated) == _uncut(tokenizer, ADVERSARIAL, max_length + 16, pairs)


PIECES = [
    "the",
    "team",
    "won",
    " ",
    " ",
    "   ",
    "\t",
    "\n",
    "\u00a0",
    "\u3000",
    "天气",
    "👍🏽",
    "👨‍👩‍👧",
    "e\u0301",
    ".",
    "!?",
    "x" * 40,
    "won't",
    "1234",
    "\x1c",
    "\u200b",
    "'s",  # split off by byte-level BPE's pattern
    "123456",  # digits in threes to some pre-tokenizers
    "\r\n",
    "[SEP]",  # a special token written in the text
    "İ",  # lowercased to two characters
    "ﬁ",  # two letters after NFKC
]


@given(
    parts=st.lists(st.sampled_from(PIECES), min_size=0, max_size=400),
    max_length=st.integers(min_value=3, max_value=12),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cutting_never_changes_ids_on_random_texts(
    tokenizers: dict[str, Any], parts: list[str], max_length: int
) -> None:
    text = "".join(parts)
    for name in ("wordpiece", "byte-level-bpe", "unigram-metaspace"):
        result = tokenize(tokenizers[name], [text], max_length)
        assert (result.input_ids, result.truncated) == _uncut(tokenizers[name], [text], max_length), name


@pytest.mark.parametrize(
    "sentence",
    [
        "How do I activate my new card before I travel abroad next week? ",
        "我想在下周出国旅行之前激活我的新卡，请问应该怎么做？",  # no space: each character is a word of BERT's
    ],
)
def test_a_10_mb_text_reaches_the_tokenizer_as_a_few_thousand_characters(
    tokenizers: dict[str, Any], sentence: str
) -> None:
    tokenizer = tokenizers["embedded"]
    seen: list[int] = []

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(tokenizer, name)

        def __call__(self, texts: list[str], *args: Any, **kwargs: Any) -> Any:
            seen.extend(len(text) for text in texts)
            return tokenizer(texts, *args, **kwargs)

    huge = sentence * (10_000_000 // len(sentence.encode("utf-8")) + 1)  # 10 MB of UTF-8
    result = tokenize(Spy(), [huge, "ok"], 256)
    assert max(seen) <= 256 * CHARS_PER_TOKEN
    assert result.truncated == 1 and len(result.input_ids[0]) == 256
    assert result.input_ids[0] == _uncut(tokenizer, [huge[:20_000]], 256)[0][0]
