"""The judge hook: a callable `judge(prompt, response, rubric) -> bool` for what rules can't check.

    from tandem.evals.judge import openai_compatible_judge
    judge = openai_compatible_judge("http://localhost:8000/v1", model="judge-model")
    get_task("behavior_spec", judge=judge)

Any callable of that shape works (a person at a terminal, a local model, a hosted API). Suites
that need a judge and have none report those items as "not graded", never as passed.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

RubricJudge = Callable[[str, str, str], bool]

_INSTRUCTIONS = (
    "You grade an assistant's reply against a rubric. Read the user's prompt, the reply and the "
    "rubric, then answer with one word: PASS if the reply meets the rubric, FAIL if it does not."
)


def openai_compatible_judge(
    base_url: str,
    model: str,
    api_key: str | None = None,
    *,
    timeout_s: float = 60.0,
    client: httpx.Client | None = None,
) -> RubricJudge:
    """A judge backed by any OpenAI-compatible `/chat/completions` endpoint (greedy, 4 tokens).

    The verdict is PASS only when the judge's reply starts with "pass"; anything else fails, so a
    confused judge cannot inflate a pass rate."""
    http = client or httpx.Client(timeout=timeout_s)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/chat/completions"

    def judge(prompt: str, response: str, rubric: str) -> bool:
        body = {
            "model": model,
            "temperature": 0,
            "max_tokens": 4,
            "messages": [
                {"role": "system", "content": _INSTRUCTIONS},
                {
                    "role": "user",
                    "content": f"PROMPT:\n{prompt}\n\nREPLY:\n{response}\n\nRUBRIC:\n{rubric}",
                },
            ],
        }
        r = http.post(url, json=body, headers=headers)
        r.raise_for_status()
        text = r.json()["choices"][0]["message"]["content"] or ""
        return text.strip().lower().startswith("pass")

    return judge
