"""The model catalog and the fake engine the other hermetic tests rely on."""

import asyncio

import pytest

from fake_engine import FakeEngine
from tandem.core import Message, SamplingParams
from tandem.engines import ModelCatalog, ModelInfo, ModelNotFound


def test_lazy_engines_load_once_on_first_use():
    built = []
    catalog = ModelCatalog(default_model="m1")

    def factory():
        built.append(1)
        return FakeEngine("m1")

    catalog.add_lazy(ModelInfo(id="m1", backend="fake"), factory)
    assert [m.id for m in catalog.list()] == ["m1"]
    assert built == []
    assert catalog.get() is catalog.get("m1")
    assert built == [1]


def test_unknown_model_is_reported_by_name():
    catalog = ModelCatalog()
    catalog.add(FakeEngine("known"))
    with pytest.raises(ModelNotFound, match="nope"):
        catalog.get("nope")


def test_fake_engine_honours_max_tokens_stop_and_usage():
    engine = FakeEngine(script=["one two three four five"])
    msgs = [Message.text("user", "hi")]
    done = asyncio.run(engine.complete(msgs, SamplingParams(max_tokens=2)))
    assert (done.text, done.finish_reason, done.usage.completion_tokens) == (
        "one two",
        "length",
        2,
    )
    stopped = asyncio.run(engine.complete(msgs, SamplingParams(stop=("four",))))
    assert stopped.text == "one two three "
    assert stopped.finish_reason == "stop"
