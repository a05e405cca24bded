"""`userservice serve` and `userservice seed`: the only place that reads arguments."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from userservice.db import create_engine, create_schema
from userservice.security import Hasher
from userservice.seed import seed_users
from userservice.settings import ConfigError, Settings, load_settings

EXIT_CONFIG = 2
EXIT_FAILURE = 3
# What a missing server, a refused login or an unopenable SQLite file raise.
UNREACHABLE = (OSError, SQLAlchemyError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="userservice", description="The user service under test.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", help="address to bind (default: USERSVC_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: USERSVC_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default: USERSVC_WORKERS or 1)")
    serve.add_argument("--database-url", help="overrides USERSVC_DATABASE_URL")
    serve.add_argument("--dev", action="store_true", help="dev mode: no JWT secret needed (never in production)")
    seed = commands.add_parser("seed", help="create seed users for load tests (idempotent)")
    seed.add_argument("--count", type=int, required=True, help="users seed-000000 .. seed-<count-1>")
    seed.add_argument("--database-url", help="overrides USERSVC_DATABASE_URL")
    return parser


def _apply_to_environment(args: argparse.Namespace) -> None:
    """Arguments become USERSVC_* variables, so that every uvicorn worker process sees the same settings."""
    for name in ("host", "port", "workers", "database_url"):
        value = getattr(args, name, None)
        if value is not None:
            os.environ[f"USERSVC_{name.upper()}"] = str(value)
    if getattr(args, "dev", False):
        os.environ["USERSVC_DEV"] = "1"


async def _prepare(settings: Settings) -> None:
    """Create the schema once, before workers start, so that they never race to create it."""
    engine = create_engine(settings)
    try:
        await create_schema(engine)
    finally:
        await engine.dispose()


def serve(settings: Settings) -> int:
    import uvicorn

    uvicorn.run(
        "userservice.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,  # a log line per request would cost more than some endpoints
    )
    return 0


async def _seed(settings: Settings, count: int) -> int:
    engine = create_engine(settings)
    hasher = Hasher(settings)
    try:
        await create_schema(engine)
        return await seed_users(engine, hasher, count)
    finally:
        hasher.close()
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    _apply_to_environment(args)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "seed":
        if args.count < 0:
            print("error: --count must be 0 or more\nhint: give the number of users to create", file=sys.stderr)
            return EXIT_CONFIG
        start = time.perf_counter()
        try:
            created = asyncio.run(_seed(settings, args.count))
        except UNREACHABLE as exc:
            return _unreachable(exc)
        print(f"seeded {created} new users ({args.count - created} existed) in {time.perf_counter() - start:.2f} s")
        return 0
    return _checked_serve(settings)


def _checked_serve(settings: Settings) -> int:
    if not _knob_routes_exist(settings):
        return EXIT_CONFIG
    try:
        asyncio.run(_prepare(settings))
    except UNREACHABLE as exc:
        return _unreachable(exc)
    return serve(settings)


def _route_labels() -> list[str]:
    from userservice.routes import router

    return sorted(f"{method} {route.path}" for route in router.routes for method in getattr(route, "methods", ()))


def _knob_routes_exist(settings: Settings) -> bool:
    """False, after a two-line error, when a knob names a route the app does not have."""
    from userservice.knobs import parse_knobs, unknown_routes

    unknown = unknown_routes(parse_knobs(settings.knob_delay, settings.knob_errors), _route_labels())
    if unknown:
        print(f"error: USERSVC_KNOB_DELAY/USERSVC_KNOB_ERRORS name no route of the service: {unknown}", file=sys.stderr)
        print(f"hint: use a route label as the app declares it, one of: {', '.join(_route_labels())}", file=sys.stderr)
    return not unknown


def _unreachable(exc: BaseException) -> int:
    # SQLAlchemy wraps the driver's error and appends a link; the driver's own words are the useful part.
    cause = getattr(exc, "orig", None) or exc
    reason = " ".join(str(cause).split())[:300] or type(cause).__name__
    print(f"error: cannot reach the database: {reason}", file=sys.stderr)
    print("hint: check USERSVC_DATABASE_URL and that the database server runs and accepts this user", file=sys.stderr)
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
