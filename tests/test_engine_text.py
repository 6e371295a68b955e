"""Hermetic tests of the local engines' text plumbing and sampling."""

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from tandem.core import Message, SamplingParams
from tandem.engines.sampling import apply_repetition_penalty, sample_token
from tandem.engines.text import ChatTemplate, IncrementalDecoder, StopMatcher


def byte_tokenizer() -> Tokenizer:
    """A byte-level tokenizer with one token per byte: multi-byte characters span tokens."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def test_incremental_decoder_reassembles_multibyte_characters():
    tok = byte_tokenizer()
    text = "héllo wörld 👋 done"
    ids = tok.encode(text).ids
    assert len(ids) > len(text)  # é, ö and the emoji take several byte tokens
    decoder = IncrementalDecoder(tok)
    deltas = [decoder.push(i) for i in ids]
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)


@pytest.mark.parametrize(
    ("pieces", "stops", "expected", "hit"),
    [
        (["Hello", " wor", "ld", "STOP", "after"], ["STOP"], "Hello world", True),
        (["ab", "cS", "T", "OP"], ["STOP"], "abc", True),  # stop string split across pieces
        (["no stop", " here"], ["STOP"], "no stop here", False),
        (["a", "b"], [], "ab", False),
        (["x", "END", "y"], ["Q", "END"], "x", True),
    ],
)
def test_stop_matcher(pieces, stops, expected, hit):
    matcher = StopMatcher(stops)
    out, was_hit = "", False
    for piece in pieces:
        text, was_hit = matcher.feed(piece)
        out += text
        if was_hit:
            break
    if not was_hit:
        out += matcher.flush()
    assert out == expected
    assert was_hit == hit


def test_stop_matcher_never_releases_a_partial_stop_string():
    matcher = StopMatcher(["</end>"])
    released, _ = matcher.feed("answer </e")
    assert "</e" not in released


def test_chat_template_renders_like_the_model_expects():
    source = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    rendered = ChatTemplate(source).render(
        [Message.text("system", "Be brief."), Message.text("user", "Hi")]
    )
    assert rendered == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_greedy_takes_the_argmax_after_penalty():
    logits = np.array([1.0, 3.0, 2.5, -1.0], dtype=np.float32)
    params = SamplingParams(temperature=0, repetition_penalty=1.0)
    assert sample_token(logits.copy(), params, np.random.default_rng(0), np.array([])) == 1
    # Penalising token 1 (3.0 / 1.5 = 2.0) makes token 2 the best.
    penalised = SamplingParams(temperature=0, repetition_penalty=1.5)
    assert sample_token(logits.copy(), penalised, np.random.default_rng(0), np.array([1])) == 2


def test_repetition_penalty_pushes_negative_logits_down():
    logits = np.array([2.0, -2.0], dtype=np.float32)
    apply_repetition_penalty(logits, np.array([0, 1]), 2.0)
    assert logits.tolist() == [1.0, -4.0]


def test_top_p_only_samples_from_the_nucleus():
    logits = np.full(1000, -10.0, dtype=np.float32)
    logits[[7, 8]] = [10.0, 9.5]  # together nearly all of the probability mass
    params = SamplingParams(temperature=1.0, top_p=0.9, repetition_penalty=1.0)
    rng = np.random.default_rng(1)
    drawn = {sample_token(logits.copy(), params, rng, np.array([])) for _ in range(200)}
    assert drawn <= {7, 8}
    assert drawn == {7, 8}


def test_sampling_is_reproducible_with_a_seed():
    logits = np.random.default_rng(0).normal(size=5000).astype(np.float32)
    params = SamplingParams(temperature=1.0, top_p=1.0, repetition_penalty=1.0)

    def draw(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        return [sample_token(logits.copy(), params, rng, np.array([])) for _ in range(20)]

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)
