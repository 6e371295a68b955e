"""The real embedded model behind each local engine (marker `model`)."""

import asyncio
import time

import pytest

from tandem.core import Message, SamplingParams
from tandem.engines.base import EngineError
from tandem.registry.embedded import load_prepared, prepare_embedded_model

pytestmark = pytest.mark.model

GREEDY = SamplingParams(temperature=0, max_tokens=24, repetition_penalty=1.0)
FRANCE = [Message.text("user", "What is the capital of France? Answer in one sentence.")]


def test_preparation_is_reused_quickly(model_home):
    before = load_prepared(model_home)
    assert before is not None
    start = time.perf_counter()
    again = prepare_embedded_model(model_home)
    assert time.perf_counter() - start < 1.0
    assert again.manifest == before.manifest
    assert (again.hf_dir / "model.safetensors").exists()
    assert (again.hf_dir / "tokenizer.json").exists()
    assert (again.onnx_dir / "model.onnx").exists()


def test_default_engine_answers_and_reports_usage(onnx_engine):
    done = asyncio.run(onnx_engine.complete(FRANCE, GREEDY))
    assert "Paris" in done.text
    assert done.usage.prompt_tokens > 5
    assert 0 < done.usage.completion_tokens <= 24
    assert done.rendered_prompt.endswith("<|im_start|>assistant\n")
    assert "What is the capital of France? Answer in one sentence." in done.rendered_prompt


def test_greedy_is_deterministic_and_seeded_sampling_reproducible(onnx_engine):
    a = asyncio.run(onnx_engine.complete(FRANCE, GREEDY))
    b = asyncio.run(onnx_engine.complete(FRANCE, GREEDY))
    assert a.text == b.text
    sampled = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=20, seed=1234)
    c = asyncio.run(onnx_engine.complete(FRANCE, sampled))
    d = asyncio.run(onnx_engine.complete(FRANCE, sampled))
    assert c.text == d.text and c.seed == d.seed == 1234


def test_max_tokens_and_stop_strings(onnx_engine):
    capped = asyncio.run(onnx_engine.complete(FRANCE, SamplingParams(temperature=0, max_tokens=3)))
    assert capped.finish_reason == "length"
    assert capped.usage.completion_tokens == 3
    full = asyncio.run(onnx_engine.complete(FRANCE, GREEDY))
    stop_word = full.text.split()[2]
    stopped = asyncio.run(
        onnx_engine.complete(
            FRANCE,
            SamplingParams(temperature=0, max_tokens=24, repetition_penalty=1.0, stop=(stop_word,)),
        )
    )
    assert stopped.finish_reason == "stop"
    assert stop_word not in stopped.text
    assert full.text.startswith(stopped.text)


def test_concurrent_requests_share_decode_steps(onnx_engine):
    """A short request sent while a long one is generating finishes first, i.e. it does not
    queue behind the long answer; and answers are unaffected by their batch neighbours."""
    long_params = SamplingParams(temperature=0, max_tokens=200, repetition_penalty=1.0)
    story = [Message.text("user", "Write a long story about a dragon and a knight.")]
    alone = asyncio.run(onnx_engine.complete(FRANCE, GREEDY))

    async def race():
        finished = []

        async def run(name, messages, params, delay):
            await asyncio.sleep(delay)
            done = await onnx_engine.complete(messages, params)
            finished.append(name)
            return done

        long_done, short_done = await asyncio.gather(
            run("long", story, long_params, 0), run("short", FRANCE, GREEDY, 0.2)
        )
        return finished, long_done, short_done

    finished, long_done, short_done = asyncio.run(race())
    assert long_done.usage.completion_tokens > 100
    assert finished == ["short", "long"]
    assert short_done.text == alone.text


def test_cancelling_a_stream_frees_its_slot(onnx_engine):
    async def cancel_early():
        stream = onnx_engine.stream(
            onnx_engine.encode([Message.text("user", "Write a very long essay about rivers.")]),
            SamplingParams(temperature=0, max_tokens=400),
        )
        count = 0
        async for _ in stream:
            count += 1
            if count == 3:
                break
        await stream.aclose()
        for _ in range(50):
            if not onnx_engine._active:
                return True
            await asyncio.sleep(0.05)
        return False

    assert asyncio.run(cancel_early())


def test_a_caller_whose_event_loop_closed_does_not_stop_the_engine(onnx_engine):
    """A stream left open when its event loop closes (a client gone with its loop) must not
    kill the scheduler thread: the next caller is still answered."""
    params = SamplingParams(temperature=0, max_tokens=200, repetition_penalty=1.0)
    loop = asyncio.new_event_loop()
    stream = onnx_engine.stream(onnx_engine.encode(FRANCE), params)
    loop.run_until_complete(stream.__anext__())
    loop.close()  # the stream is never closed: the engine keeps generating into a dead loop

    async def answer() -> object:
        return await asyncio.wait_for(onnx_engine.complete(FRANCE, GREEDY), timeout=60)

    assert "Paris" in asyncio.run(answer()).text


def test_prompt_longer_than_the_context_is_a_clear_error(onnx_engine):
    huge = [Message.text("user", "word " * (onnx_engine.max_context + 10))]
    with pytest.raises(EngineError, match="context"):
        asyncio.run(onnx_engine.complete(huge, GREEDY))


def test_transformers_reference_engine_agrees_on_an_easy_fact(prepared_model):
    from tandem.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(prepared_model.hf_dir, "ref")
    done = asyncio.run(engine.complete(FRANCE, GREEDY))
    assert "Paris" in done.text
    assert done.usage.completion_tokens <= 24
    batch = asyncio.run(engine.complete_batch([(FRANCE, GREEDY), (FRANCE, GREEDY)]))
    assert [b.text for b in batch] == [batch[0].text] * 2
    assert "Paris" in batch[0].text


def test_the_fp32_onnx_model_answers_as_the_fp32_reference_does(prepared_model):
    """`tandem models prepare --fp32`: the same engine on fp32 weights reproduces the
    transformers fp32 reference token for token (greedy), which int8 does not promise."""
    from tandem.engines.onnx import OnnxEngine
    from tandem.engines.transformers_engine import TransformersEngine
    from tandem.registry.embedded import FP32_ONNX_DIR, build_fp32_onnx

    fp32_dir = build_fp32_onnx(prepared_model.hf_dir, prepared_model.root / FP32_ONNX_DIR)
    prompts = [
        FRANCE,
        [Message.text("user", "Write a short poem about the sea, in four lines.")],
        [Message.text("user", "List three uses of a paperclip.")],
    ]
    params = SamplingParams(temperature=0, max_tokens=48, repetition_penalty=1.0)
    items = [(messages, params) for messages in prompts]
    onnx = OnnxEngine(fp32_dir, "fp32")
    try:
        ours = asyncio.run(onnx.complete_batch(items))
    finally:
        onnx.close()
    # One at a time: a left-padded batch is not bit-identical to the unpadded sequence.
    transformers = TransformersEngine(prepared_model.hf_dir, "ref")
    reference = [asyncio.run(transformers.complete(m, p)) for m, p in items]
    assert [c.text for c in ours] == [c.text for c in reference]
    assert sum(c.usage.completion_tokens for c in ours) > 60  # long enough to diverge
