"""The ``streamer`` command line. Parsing and exit codes live here; the work lives elsewhere.

Exit codes: 0 success, 1 the input or the configuration is wrong (a message says what and
where), 2 the command line is wrong (argparse's usage message).

A command imports what it needs when it runs (the service's modules, the settings, asyncio), so
that ``convert`` starts with only the format layer loaded, and the other commands without the
service when they do not need it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from schemas import Kind, Shape, Version
from streamer.convert import ConvertError, convert

if TYPE_CHECKING:
    from streamer.config import Settings
    from streamer.log.base import Store, TokenRow

T = TypeVar("T")

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): not an error of ours
        return 0
    except _failures() as exc:  # evaluated only once something was raised
        print(f"streamer {args.command}: {exc}", file=sys.stderr)
        return 1


def _failures() -> tuple[type[Exception], ...]:
    """The errors that mean the input, the configuration or the service is wrong: a message,
    not a traceback."""
    from streamer.client import ServiceError
    from streamer.config import ConfigError
    from streamer.daemon import ListenError
    from streamer.log.base import LogError

    return (ConvertError, ConfigError, LogError, ServiceError, ListenError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer", description="Data Streamer for IoT connectivity platforms."
    )
    parser.add_argument("--config", metavar="FILE", help="TOML settings (or STREAMER_CONFIG)")
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the service (ingest API, durable log, delivery to every stream)",
        description="Run the service until SIGTERM/SIGINT. Settings: STREAMER_* variables "
        "and the --config TOML file.",
    )
    run.set_defaults(handler=_run)

    demo_command = commands.add_parser(
        "demo", help="a first look: the service, simulated records and a local webhook"
    )
    demo_command.add_argument("--rate", type=float, default=20.0, help="records per second")
    demo_command.set_defaults(handler=_demo)

    replay_command = commands.add_parser(
        "replay",
        help="send historical records from files to a running service",
        description="Read NDJSON, JSON or S3 CSV files (gzip when the name ends in .gz), in any "
        "version, and send their records to the ingest API of a running service.",
    )
    replay_command.add_argument("files", nargs="+", metavar="FILE", help="files; - = stdin")
    _client_options(replay_command)
    replay_command.add_argument("--batch", type=int, default=500, help="records per request")
    replay_command.set_defaults(handler=_replay)

    simulate_command = commands.add_parser(
        "simulate", help="send realistic event and usage records at a chosen rate"
    )
    _client_options(simulate_command)
    simulate_command.add_argument("--rate", type=float, default=100.0, help="records per second")
    simulate_command.add_argument("--count", type=int, help="stop after this many records")
    simulate_command.add_argument("--kind", type=Kind, choices=list(Kind), help="one kind only")
    simulate_command.add_argument("--organisations", type=int, default=1, help="organisations 1..N")
    simulate_command.add_argument("--seed", type=int, default=0, help="same seed, same records")
    simulate_command.set_defaults(handler=_simulate)

    streams_command = commands.add_parser(
        "streams", help="list the data streams of a running service with their status"
    )
    _client_options(streams_command, "an observer, user or admin token")
    streams_command.set_defaults(handler=_streams)

    top_command = commands.add_parser(
        "top", help="a live view of a running service's streams: rates, pending, errors"
    )
    _client_options(top_command, "an observer, user or admin token")
    top_command.add_argument(
        "--interval", type=float, default=2.0, help="seconds between refreshes"
    )
    top_command.set_defaults(handler=_top)

    check = commands.add_parser("check-config", help="validate the settings and print them")
    check.set_defaults(handler=_check_config)

    token = commands.add_parser("token", help="create, list or revoke application tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="make a token; it is printed once")
    create.add_argument(
        "--role", type=_role, required=True, help="what the token may do (a wrong one lists them)"
    )
    create.add_argument("--organisation", type=int, help="organisation id; none: platform token")
    create.add_argument("--name", default="", help="what the token is for")
    create.set_defaults(handler=_token_create)
    listing = token_commands.add_parser("list", help="list tokens (never their secrets)")
    listing.set_defaults(handler=_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(handler=_token_revoke)

    conv = commands.add_parser(
        "convert",
        help="convert records between the old, migrated and new formats",
        description="Read event and usage records (JSON, JSON array, NDJSON or S3 CSV; "
        "gzip when the name ends in .gz) in any version and write them in one version, "
        "as NDJSON or CSV, to standard output.",
    )
    conv.add_argument("inputs", nargs="*", metavar="FILE", help="input files; none or - = stdin")
    conv.add_argument(
        "--to", type=Version, choices=list(Version), default=Version.NEW, help="version to write"
    )
    conv.add_argument("--csv", action="store_true", help="write CSV (the S3 layout) not NDJSON")
    conv.add_argument(
        "--kind", type=Kind, choices=list(Kind), help="write only records of this kind"
    )
    conv.add_argument(
        "--shape",
        type=Shape,
        choices=list(Shape),
        default=Shape.FULL,
        help="JSON shape: full (Webhook, Kinesis) or keen (KeenIO's reduced old/migrated shape)",
    )
    conv.set_defaults(handler=_convert)
    return parser


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        from importlib.metadata import version

        print(f"streamer {version('streamer')}")
        parser.exit()


def _role(text: str) -> str:
    from streamer.auth import ROLES

    if text not in ROLES:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(ROLES)}")
    return text


def _wait(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end on a new event loop."""
    import asyncio

    return asyncio.run(work)


def _settings(args: argparse.Namespace) -> Settings:
    from streamer.config import load_settings

    return load_settings(args.config)


def _data_settings(args: argparse.Namespace) -> Settings:
    """The settings of a command that opens an existing data directory; says which one."""
    from streamer.config import check_data_dir

    settings = _settings(args)
    check_data_dir(settings.data_dir, create=False)
    print(f"data directory: {settings.data_dir.resolve()}", file=sys.stderr)
    return settings


def _run(args: argparse.Namespace) -> int:
    from streamer.config import check_data_dir

    settings = _settings(args)
    check_data_dir(settings.data_dir, create=True)
    from streamer.daemon import serve
    from streamer.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    _wait(serve(settings))
    return 0


def _client_options(
    command: argparse.ArgumentParser, token: str = "an ingest or admin token"
) -> None:
    command.add_argument(
        "--url",
        default=os.environ.get("STREAMER_URL", "http://127.0.0.1:8080"),
        help="the service (or STREAMER_URL)",
    )
    command.add_argument(
        "--token",
        default=os.environ.get("STREAMER_TOKEN"),
        help=f"{token} (better: STREAMER_TOKEN, kept out of the process list)",
    )


def _token(args: argparse.Namespace) -> str:
    if not args.token:
        from streamer.config import ConfigError

        raise ConfigError("a token is needed: --token or STREAMER_TOKEN")
    return str(args.token)


def _replay(args: argparse.Namespace) -> int:
    from streamer.replay import replay

    _wait(replay(args.files, args.url, _token(args), args.batch))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from streamer.replay import simulate

    kinds = (args.kind,) if args.kind else (Kind.EVENT, Kind.USAGE)
    _wait(
        simulate(
            args.url,
            _token(args),
            rate=args.rate,
            count=args.count,
            kinds=kinds,
            organisations=args.organisations,
            seed=args.seed,
        )
    )
    return 0


def _streams(args: argparse.Namespace) -> int:
    from streamer.status import show_streams

    _wait(show_streams(args.url, _token(args)))
    return 0


def _top(args: argparse.Namespace) -> int:
    from streamer.status import top

    _wait(top(args.url, _token(args), args.interval))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streamer.demo import demo

    _wait(demo(args.rate))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from streamer.config import check_data_dir
    from streamer.redact import mask_urls

    settings = _settings(args)
    existing = settings.data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    check_data_dir(existing, create=False)  # what ``run`` will use, or where it will make it
    for name, value in settings.model_dump().items():
        shown = "****" if isinstance(value, SecretStr) else value
        if name == "nats_url":  # a user and password or a token may be in it
            shown = mask_urls(value)
        print(f"{name} = {shown}")
    return 0


async def _store(args: argparse.Namespace) -> Store:
    """The store of the data directory of a command that opens an existing one."""
    from streamer.app import open_store

    return await open_store(_data_settings(args))


def _token_create(args: argparse.Namespace) -> int:
    from streamer.auth import Tokens

    async def create() -> tuple[int, str]:
        store = await _store(args)
        try:
            return await Tokens(store).create(args.role, args.organisation, args.name)
        finally:
            await store.aclose()

    token_id, token = _wait(create())
    scope = "platform" if args.organisation is None else f"organisation {args.organisation}"
    print(f"token {token_id} ({args.role}, {scope}); shown once, keep it safe:", file=sys.stderr)
    print(token)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    async def rows() -> list[TokenRow]:
        store = await _store(args)
        try:
            return await store.tokens()
        finally:
            await store.aclose()

    for row in _wait(rows()):
        scope = "platform" if row.organisation is None else f"organisation {row.organisation}"
        print(f"{row.id}\t{row.role}\t{scope}\t{row.created_at}\t{row.name}")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    from streamer.auth import Tokens
    from streamer.config import ConfigError

    async def revoke() -> bool:
        store = await _store(args)
        try:
            return await Tokens(store).revoke(args.id)
        finally:
            await store.aclose()

    if not _wait(revoke()):
        raise ConfigError(f"no token with id {args.id}")
    print(f"token {args.id} revoked", file=sys.stderr)
    return 0


def _convert(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    count = convert(args.inputs, out, args.to, as_csv=args.csv, kind=args.kind, shape=args.shape)
    out.flush()
    if sys.stderr.isatty():
        print(f"converted {count} records to {args.to}", file=sys.stderr)
    return 0
