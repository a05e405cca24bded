"""The FastAPI application: wiring of settings, database, hasher, knobs, error shape and body limit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userservice.db import create_engine, create_schema
from userservice.errors import error_response, install_error_handlers
from userservice.knobs import knob_dependency, parse_knobs
from userservice.routes import router
from userservice.security import Hasher
from userservice.settings import Settings, load_settings

log = logging.getLogger("userservice")


class BodyLimit:
    """Refuse request bodies over the limit with a 413, whether or not Content-Length announces them.

    A chunked body is read up to the limit here and replayed to the app: an error raised from inside the
    app's own body reading would turn into FastAPI's generic 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((value for name, value in scope.get("headers", ()) if name == b"content-length"), None)
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server stops at Content-Length
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        request: Message = {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, _replay([request], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "payload_too_large", f"request body over {self.max_bytes} bytes")
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replaying_receive() -> Message:
        return pending.pop(0) if pending else await receive()

    return replaying_receive


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment). uvicorn calls it once per worker."""
    settings = settings or load_settings()
    knobs = parse_knobs(settings.knob_delay, settings.knob_errors, settings.knob_burn)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        hasher = Hasher(settings)
        await create_schema(engine)
        app.state.settings, app.state.engine, app.state.hasher = settings, engine, hasher
        if settings.dev_mode:
            log.warning("dev mode: tokens are signed with a fixed, public secret; set USERSVC_JWT_SECRET to deploy")
        if knobs.active or settings.knob_slow_search:
            log.warning("regression knobs on: delay=%r burn=%r errors=%r slow_search=%s", settings.knob_delay,
                        settings.knob_burn, settings.knob_errors, settings.knob_slow_search)  # fmt: skip
        try:
            yield
        finally:
            hasher.close()
            await engine.dispose()

    # Only when a knob is set does any request pay for the check.
    dependencies = [Depends(knob_dependency(knobs))] if knobs.active else []
    app = FastAPI(title="userservice", version="0.1.0", lifespan=lifespan, dependencies=dependencies)
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
