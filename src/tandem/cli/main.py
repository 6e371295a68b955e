"""The `tandem` command.

tandem serve                         # web app + OpenAI-compatible API on 127.0.0.1:8000
tandem chat                          # chat in the terminal (/new, /model NAME, /quit)
tandem models list | show ID | prepare | lineage [ID] | set-status ID STATUS
tandem data build sft|preference|kto [filters] | list | show ID | export ID --to DIR | import FILE
tandem train sft|dpo|kto|reward --dataset SNAPSHOT [--base VERSION] [--config FILE.yaml]
tandem users create EMAIL [--admin] | api-key EMAIL
tandem flywheel run [--users N] [--max-events 2000] [--method dpo] | report DIR
tandem eval arena-ratings --battles FILE.jsonl | online [--json] | refusal-agreement [--dir DIR]
            | ifeval-grade --responses R.jsonl --output OUT.jsonl [--input FILE]
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Annotated

import typer

from tandem.cli.data import data_app
from tandem.cli.evals import eval_app
from tandem.cli.flywheel import flywheel_app
from tandem.cli.rollout import rollout_app
from tandem.cli.simulate import simulate_app
from tandem.cli.train import add_models_commands, train_app
from tandem.core.settings import Settings, make_private_dir

app = typer.Typer(help="tandem: a chat assistant that improves from its users' signals.")
models_app = typer.Typer(help="Model versions in the registry.")
users_app = typer.Typer(help="Accounts and API keys.")
app.add_typer(models_app, name="models")
app.add_typer(users_app, name="users")
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")
app.add_typer(rollout_app, name="rollout")
app.add_typer(simulate_app, name="simulate")
app.add_typer(flywheel_app, name="flywheel")
add_models_commands(models_app)

HostOpt = Annotated[str, typer.Option(envvar="HOST", help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option(envvar="PORT", help="Port to listen on.")]


def _settings() -> Settings:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Settings.from_env()


@contextmanager
def _session(settings: Settings):  # type: ignore[no-untyped-def]
    """A database session on a migrated database."""
    from tandem.store import make_engine, make_session_factory, migrate

    engine = make_engine(settings.database_url)
    migrate(engine)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _prepare(settings: Settings):  # type: ignore[no-untyped-def]
    from tandem.registry.embedded import load_prepared, prepare_embedded_model

    if load_prepared(settings.home) is None:
        typer.echo(
            f"Preparing the embedded model into {settings.registry_dir} "
            "(first start only, about a minute)…",
            err=True,
        )
    prepared = prepare_embedded_model(settings.home)
    with _session(settings) as session:
        from tandem.registry.versions import register_prepared

        register_prepared(session, prepared)
    # The files tool's embedding model (ONNX export in a child process, once, ~10 s): done
    # here so the first upload does not wait for it.
    from tandem.retrieval.embedding_model import prepare_embedding_model

    prepare_embedding_model(settings.home)
    return prepared


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

    from tandem.api.app import create_app
    from tandem.core.credentials import WeakSecret, check_admin_api_key
    from tandem.engines.setup import build_catalog

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = _settings()
    try:  # refused before a minute goes into preparing the model
        check_admin_api_key(settings.admin_api_key, settings.development)
    except WeakSecret as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    make_private_dir(settings.home)  # 0700: every user's data lives there
    _prepare(settings)
    catalog = build_catalog(settings)
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


def _stream_local(model: str, history: list[dict[str, str]]):  # type: ignore[no-untyped-def]
    from tandem.core import Message, SamplingParams

    async def run() -> None:
        engine = _chat_catalog.get(model)
        messages = [Message.text(m["role"], m["content"]) for m in history]  # type: ignore[arg-type]
        reply = []
        async for chunk in engine.stream(messages, SamplingParams()):
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


_chat_catalog = None  # the in-process catalog of `tandem chat` without --url


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
    global _chat_catalog
    settings = _settings()
    if url is None:
        from tandem.engines.setup import build_catalog

        _prepare(settings)
        _chat_catalog = build_catalog(settings)
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
                if _chat_catalog is not None:
                    for info in _chat_catalog.list():
                        typer.echo(f"  {info.id}  ({info.backend})")
                typer.echo(f"current: {current}")
            else:
                if _chat_catalog is not None and name not in _chat_catalog:
                    typer.echo(f"no model {name!r}; /model lists them")
                    continue
                current = name
                typer.echo(f"(now chatting with {current})")
            continue
        history.append({"role": "user", "content": line})
        sys.stdout.write("assistant> ")
        try:
            if url is None:
                _stream_local(current, history)
            else:
                _stream_remote(url, api_key, current, history)
        except KeyboardInterrupt:
            history.pop()
            typer.echo("\n(stopped)")
            continue
        except Exception as exc:
            history.pop()
            typer.echo(f"\nerror: {exc}", err=True)
            continue
        sys.stdout.write("\n")


@models_app.command("list")
def models_list() -> None:
    """List model versions with their status and parent."""
    settings = _settings()
    from tandem.store import ModelVersionRepo

    with _session(settings) as session:
        rows = ModelVersionRepo(session).list()
        if not rows:
            typer.echo("no model versions yet: `tandem models prepare` or `tandem serve`")
        for row in rows:
            parent = f"  parent={row.parent_id}" if row.parent_id else ""
            typer.echo(f"{row.id}  {row.status}  formats={','.join(row.formats)}{parent}")


@models_app.command("show")
def models_show(model_id: str) -> None:
    """Show one version: status, files, lineage, card."""
    settings = _settings()
    from tandem.store import ModelVersionRepo, NotFound

    with _session(settings) as session:
        repo = ModelVersionRepo(session)
        try:
            row = repo.get(model_id)
        except NotFound:
            typer.echo(f"no model version {model_id!r}", err=True)
            raise typer.Exit(1) from None
        lineage = " <- ".join(v.id for v in repo.lineage(model_id))
        typer.echo(f"id:       {row.id}\nstatus:   {row.status}\npath:     {row.base_path}")
        typer.echo(f"formats:  {json.dumps(row.formats)}\nlineage:  {lineage}")
        typer.echo(f"created:  {row.created_at:%Y-%m-%d %H:%M}")
        if row.config:
            typer.echo(f"config:   {json.dumps(row.config)}")
        if row.card:
            typer.echo("\n" + row.card)


@models_app.command("prepare")
def models_prepare(
    fp32: Annotated[
        bool,
        typer.Option(
            "--fp32",
            help="Also build the fp32 ONNX model (~550 MB), served as <id>@onnx-fp32: the "
            "reference's answers for evaluations, at int8's speed over 16 streams.",
        ),
    ] = False,
) -> None:
    """Prepare the embedded model now (serve does this on first start)."""
    prepared = _prepare(_settings())
    typer.echo(f"{prepared.version} ready in {prepared.root}")
    if fp32:
        from tandem.registry.embedded import FP32_ONNX_DIR, build_fp32_onnx

        out = build_fp32_onnx(prepared.hf_dir, prepared.root / FP32_ONNX_DIR)
        typer.echo(f"{prepared.version}@onnx-fp32 ready in {out}")


@users_app.command("create")
def users_create(
    email: str,
    password: Annotated[
        str | None, typer.Option(help="Omit to be asked; '-' for an API-key-only account.")
    ] = None,
    admin: Annotated[bool, typer.Option(help="Make the account an administrator.")] = False,
) -> None:
    """Create an account."""
    from tandem.store import Conflict, InvalidInput, UserRepo

    if password is None:
        password = getpass.getpass("password: ")
    with _session(_settings()) as session:
        try:
            user = UserRepo(session).create(
                email, None if password == "-" else password, is_admin=admin
            )
        except (Conflict, InvalidInput) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"created {user.email}{' (admin)' if user.is_admin else ''}")


@users_app.command("api-key")
def users_api_key(
    email: str, name: Annotated[str, typer.Option(help="A label for the key.")] = "cli"
) -> None:
    """Create an API key for an account and print it (shown once; only its hash is stored).
    The one place tandem prints a secret, by design: it goes to stdout for the caller to keep,
    never to a log."""
    from tandem.store import ApiKeyRepo, UserRepo

    with _session(_settings()) as session:
        user = UserRepo(session).get_by_email(email)
        if user is None:
            typer.echo(f"no account {email!r}", err=True)
            raise typer.Exit(1)
        _, key = ApiKeyRepo(session).create(user.id, name=name)
        typer.echo(key)


if __name__ == "__main__":
    app()
