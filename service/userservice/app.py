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


class BodyTooLargeError(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over the limit with a 413, whether or not Content-Length announces them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self._refuse(scope, receive, send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "payload_too_large", f"request body over {self.max_bytes} bytes")
        await response(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment). uvicorn calls it once per worker."""
    settings = settings or load_settings()
    knobs = parse_knobs(settings.knob_delay, settings.knob_errors)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        hasher = Hasher(settings)
        await create_schema(engine)
        app.state.settings, app.state.engine, app.state.hasher = settings, engine, hasher
        if settings.dev_mode:
            log.warning("dev mode: tokens are signed with a fixed, public secret; set USERSVC_JWT_SECRET to deploy")
        if knobs.active or settings.knob_slow_search:
            log.warning("regression knobs on: delay=%r errors=%r slow_search=%s",
                        settings.knob_delay, settings.knob_errors, settings.knob_slow_search)  # fmt: skip
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
