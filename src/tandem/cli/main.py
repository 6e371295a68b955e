"""The `tandem` command.

tandem serve                         # web app + OpenAI-compatible API on 127.0.0.1:8000
tandem chat                          # chat in the terminal (/new, /model NAME, /quit)
tandem models list | show ID | prepare | lineage [ID] | set-status ID STATUS
tandem data build sft|preference|kto [filters] | list | show ID | export ID --to DIR | import FILE
tandem train sft|dpo|kto|reward --dataset SNAPSHOT [--base VERSION] [--config FILE.yaml]
tandem users create EMAIL [--admin] | api-key EMAIL
tandem experiments list | result ID [--json]
tandem flywheel run [--users N] [--max-events 2000] [--method dpo] | report DIR
tandem eval arena-ratings --battles FILE.jsonl | online [--json] | refusal-agreement [--dir DIR]
            | ifeval-grade --responses R.jsonl --output OUT.jsonl [--input FILE]
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from tandem.cli.common import TandemGroup, prepared_catalog, print_error
from tandem.cli.data import data_app
from tandem.cli.evals import eval_app
from tandem.cli.experiments import experiments_app
from tandem.cli.flywheel import flywheel_app
from tandem.cli.models import models_app
from tandem.cli.rollout import rollout_app
from tandem.cli.simulate import simulate_app
from tandem.cli.train import train_app
from tandem.cli.users import users_app
from tandem.core.settings import Settings, make_private_dir

if TYPE_CHECKING:
    from tandem.engines import ModelCatalog

app = typer.Typer(
    cls=TandemGroup, help="tandem: a chat assistant that improves from its users' signals."
)
app.add_typer(models_app, name="models")
app.add_typer(users_app, name="users")
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")
app.add_typer(rollout_app, name="rollout")
app.add_typer(experiments_app, name="experiments")
app.add_typer(simulate_app, name="simulate")
app.add_typer(flywheel_app, name="flywheel")

HostOpt = Annotated[str, typer.Option(envvar="HOST", help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option(envvar="PORT", help="Port to listen on.")]


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas (what MALLOC_ARENA_MAX does, set before any worker thread
    starts). Every thread that allocates — uvicorn's pool, the ingestion workers, onnxruntime's
    — otherwise gets its own arena, which keeps its high-water mark: bench/ingest.py measured
    a 50 MB upload's server peak at 1704 MiB with the default (8 × cores) and 915 MiB with 2.
    An operator's MALLOC_ARENA_MAX wins; not glibc: nothing to do."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8: M_ARENA_MAX


@app.command()
def serve(host: HostOpt = "127.0.0.1", port: PortOpt = 8000) -> None:
    """Start the web app and the API with the embedded model (prepared on first start)."""
    _limit_malloc_arenas()
    import psutil
    import uvicorn

    from tandem.store.credentials import check_admin_api_key
    from tandem.web.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    # WeakSecret (exit 2) before a minute goes into preparing the model.
    check_admin_api_key(settings.admin_api_key, settings.development)
    make_private_dir(settings.home)  # 0700: every user's data lives there
    catalog = prepared_catalog(settings)
    catalog.get()  # load the default engine now, not on the first request
    application = create_app(settings, catalog)
    url = f"http://{host}:{port}"
    typer.echo(
        # Counted from process start, imports included: what a person waits for.
        f"tandem is ready in {time.time() - psutil.Process().create_time():.1f}s: {url}  "
        f"(OpenAI-compatible API: {url}/v1, data: {settings.home})"
    )
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="warning",
        # X-Forwarded-* are believed only from TANDEM_TRUSTED_PROXIES (uvicorn would otherwise
        # believe them from 127.0.0.1, so any local client could pick its address).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
    )


def _stream_local(catalog: ModelCatalog, model: str, history: list[dict[str, str]]) -> None:
    from tandem.core import Message, SamplingParams

    async def run() -> None:
        engine = catalog.get(model)
        # The REPL's history holds only "user" and "assistant" turns.
        messages = [Message.text(m["role"], m["content"]) for m in history]  # type: ignore[arg-type]
        reply = []
        async for chunk in engine.stream(engine.encode(messages), SamplingParams()):
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
            reply.append(chunk.text)
        history.append({"role": "assistant", "content": "".join(reply)})

    asyncio.run(run())


def _stream_remote(url: str, key: str | None, model: str, history: list[dict[str, str]]) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": history, "stream": True}
    reply = []
    with httpx.stream(
        "POST", f"{url.rstrip('/')}/chat/completions", json=body, headers=headers, timeout=600
    ) as response:
        if response.status_code >= 400:
            response.read()
            raise typer.BadParameter(f"server answered {response.status_code}: {response.text}")
        for line in response.iter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            for choice in json.loads(line[5:]).get("choices", []):
                text = (choice.get("delta") or {}).get("content") or ""
                sys.stdout.write(text)
                sys.stdout.flush()
                reply.append(text)
    history.append({"role": "assistant", "content": "".join(reply)})


@app.command()
def chat(
    model: Annotated[
        str | None, typer.Option(help="Model id (default: the default model).")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="A server's /v1 URL; default: run the model in-process.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(envvar="TANDEM_API_KEY")] = None,
    system: Annotated[str | None, typer.Option(help="A system message for the chat.")] = None,
) -> None:
    """Chat in the terminal, streaming. Commands: /new, /model [NAME], /quit."""
    settings = Settings.from_env()
    # In-process engines unless --url names a server.
    catalog = prepared_catalog(settings) if url is None else None
    current = model or settings.default_model
    history: list[dict[str, str]] = []

    def reset() -> None:
        history.clear()
        if system:
            history.append({"role": "system", "content": system})

    reset()
    typer.echo(f"Chatting with {current}. /new starts over, /model NAME switches, /quit leaves.")
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return
        if line == "/new":
            reset()
            typer.echo("(new conversation)")
            continue
        if line.startswith("/model"):
            name = line[len("/model") :].strip()
            if not name:
                if catalog is not None:
                    for info in catalog.list():
                        typer.echo(f"  {info.id}  ({info.backend})")
                typer.echo(f"current: {current}")
            else:
                if catalog is not None and name not in catalog:
                    typer.echo(f"no model {name!r}; /model lists them")
                    continue
                current = name
                typer.echo(f"(now chatting with {current})")
            continue
        history.append({"role": "user", "content": line})
        sys.stdout.write("assistant> ")
        try:
            if catalog is not None:
                _stream_local(catalog, current, history)
            elif url is not None:
                _stream_remote(url, api_key, current, history)
        except KeyboardInterrupt:
            history.pop()
            typer.echo("\n(stopped)")
            continue
        except Exception as exc:
            history.pop()
            typer.echo(err=True)  # end the half-written "assistant> " line
            print_error(str(exc))
            continue
        sys.stdout.write("\n")


if __name__ == "__main__":
    app()
