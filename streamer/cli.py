"""The ``streamer`` command line. Parsing and exit codes live here; the work lives elsewhere.

Exit codes: 0 success, 1 the input or the configuration is wrong (a message says what and
where), 2 the command line is wrong (argparse's usage message).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from schemas import Kind, Shape, Version
from streamer.convert import ConvertError, convert

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ConvertError as exc:
        print(f"streamer {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): not an error of ours
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer", description="Data Streamer for IoT connectivity platforms."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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


def _convert(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    count = convert(args.inputs, out, args.to, as_csv=args.csv, kind=args.kind, shape=args.shape)
    out.flush()
    if sys.stderr.isatty():
        print(f"converted {count} records to {args.to}", file=sys.stderr)
    return 0
