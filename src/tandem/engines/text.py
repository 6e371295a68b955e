"""Text plumbing shared by the local engines: chat templates, incremental decoding, stop strings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import jinja2
import jinja2.sandbox
from tokenizers import Tokenizer

from tandem.core.messages import Message


class ChatTemplate:
    """Renders messages with the model's own Jinja chat template, as transformers would."""

    def __init__(self, source: str, bos_token: str = "", eos_token: str = "") -> None:
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message: str) -> None:
            raise jinja2.TemplateError(message)

        env.globals["raise_exception"] = raise_exception
        self._template = env.from_string(source)
        self.bos_token = bos_token
        self.eos_token = eos_token

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> ChatTemplate:
        config = {}
        if (model_dir / "tokenizer_config.json").exists():
            config = json.loads((model_dir / "tokenizer_config.json").read_text())
        source = config.get("chat_template")
        if (model_dir / "chat_template.jinja").exists():
            source = (model_dir / "chat_template.jinja").read_text()
        if not source:
            raise FileNotFoundError(f"{model_dir} has no chat template")

        def token(name: str) -> str:
            value = config.get(name) or ""
            return value.get("content", "") if isinstance(value, dict) else value

        return cls(source, token("bos_token"), token("eos_token"))

    def render(
        self,
        messages: Sequence[Message],
        add_generation_prompt: bool = True,
        continue_final: bool = False,
    ) -> str:
        """The prompt. `continue_final`: the last message is an unfinished assistant answer,
        left open for the model to go on writing; like transformers' `continue_final_message`,
        the template renders it whole and the text is cut right after its content."""
        rendered = self._template.render(
            messages=[m.to_openai() for m in messages],
            add_generation_prompt=add_generation_prompt and not continue_final,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
        )
        if not continue_final:
            return rendered
        final = messages[-1].content if messages else ""
        for content in (final, final.strip()):
            end = rendered.rfind(content) if content else -1
            if end >= 0:
                return rendered[: end + len(content)]
        raise ValueError("the chat template does not show the final message to continue")


class IncrementalDecoder:
    """Turns a growing list of token ids into text deltas without re-decoding everything.

    Byte-level BPE can split one character over several tokens, so a delta is held back while
    it ends in U+FFFD (an incomplete character) and released once the character completes.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self._prefix = 0  # start of the window that is re-decoded for context
        self._read = 0  # tokens whose text has been released

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        prefix_text = self.tokenizer.decode(self.ids[self._prefix : self._read])
        full_text = self.tokenizer.decode(self.ids[self._prefix :])
        if full_text.endswith("\ufffd") or len(full_text) <= len(prefix_text):
            return ""
        self._prefix, self._read = self._read, len(self.ids)
        return full_text[len(prefix_text) :]


class StopMatcher:
    """Finds stop strings in streamed text and holds back text that may be the start of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self._hold = max((len(s) for s in self.stops), default=1) - 1
        self.text = ""
        self._released = 0

    def feed(self, delta: str) -> tuple[str, bool]:
        """Add text; return (text safe to release now, whether a stop string was hit)."""
        self.text += delta
        if self.stops:
            search_from = max(0, self._released - self._hold)
            hits = [i for s in self.stops if (i := self.text.find(s, search_from)) >= 0]
            if hits:
                end = min(hits)
                out = self.text[self._released : end]
                self.text = self.text[:end]
                self._released = end
                return out, True
        safe_end = max(self._released, len(self.text) - self._hold)
        out = self.text[self._released : safe_end]
        self._released = safe_end
        return out, False

    def flush(self) -> str:
        out = self.text[self._released :]
        self._released = len(self.text)
        return out
