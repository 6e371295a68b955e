"""The real embedded model behind the live API, driven by the official openai client."""

import asyncio

import openai
import pytest
from fastapi.testclient import TestClient

from conftest import new_user

pytestmark = pytest.mark.model


@pytest.fixture
def real_catalog(onnx_engine, prepared_model):
    from tandem.engines import ModelCatalog

    catalog = ModelCatalog(default_model=prepared_model.version)
    catalog.add(onnx_engine)
    return catalog


@pytest.fixture
def real_client(settings, real_catalog, live_server):
    from tandem.web.app import create_app

    app = create_app(settings, real_catalog)
    base = live_server(app)
    with TestClient(app) as tc:
        key = new_user(tc, "ada@example.com")["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120)
    yield client
    client.close()


def test_openai_client_streams_a_multi_turn_answer(real_client, prepared_model):
    assert prepared_model.version in [m.id for m in real_client.models.list()]
    history = [{"role": "user", "content": "What is the capital of France?"}]
    answers = []
    for follow_up in (None, "And what is the capital of Italy?"):
        if follow_up:
            history.append({"role": "user", "content": follow_up})
        stream = real_client.chat.completions.create(
            model=prepared_model.version,
            messages=history,
            stream=True,
            temperature=0,
            max_tokens=40,
            stream_options={"include_usage": True},
        )
        pieces, usage, chunks = [], None, 0
        for chunk in stream:
            chunks += 1
            usage = chunk.usage or usage
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
        answer = "".join(pieces)
        assert chunks > 3  # streamed token by token, not one blob
        assert usage is not None and 0 < usage.completion_tokens <= 40
        history.append({"role": "assistant", "content": answer})
        answers.append(answer)
    assert "Paris" in answers[0]
    # The int8 engine sometimes answers the follow-up in Italian ("… la Roma"): either name
    # shows the second turn saw the first (issue 15 measures the engine's quality).
    assert "Rome" in answers[1] or "Roma" in answers[1]


def test_concurrent_api_streams_all_complete(real_client, prepared_model):
    async_client = openai.AsyncOpenAI(
        base_url=str(real_client.base_url), api_key=real_client.api_key, max_retries=0
    )

    async def one(i: int) -> str:
        r = await async_client.chat.completions.create(
            model=prepared_model.version,
            messages=[{"role": "user", "content": f"Give me a fun fact number {i}."}],
            max_tokens=30,
            seed=i,
        )
        assert r.choices[0].finish_reason in ("stop", "length")
        return r.choices[0].message.content

    async def run_all() -> list[str]:
        try:
            return await asyncio.gather(*(one(i) for i in range(8)))
        finally:
            await async_client.close()

    answers = asyncio.run(run_all())
    assert all(a.strip() for a in answers)


def test_unknown_model_and_bad_parameters_are_client_errors(real_client):
    with pytest.raises(openai.NotFoundError):
        real_client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.BadRequestError):
        real_client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=0,
        )


def test_a_prompt_longer_than_the_context_is_a_400(real_client, onnx_engine):
    huge = "word " * (onnx_engine.max_context + 10)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError, match="context"):
            real_client.chat.completions.create(
                model="smollm2-135m-instruct",
                messages=[{"role": "user", "content": huge}],
                stream=stream,
            )
