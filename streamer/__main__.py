"""``python -m streamer`` and the ``streamer`` command.

Ctrl-C while the program is still loading ends it quietly with status 130, like Ctrl-C at any
later moment, instead of with a traceback from whichever module was being imported."""

import sys


def main() -> int:
    try:
        from streamer.cli import main as cli
    except KeyboardInterrupt:
        return 130
    return cli()


if __name__ == "__main__":
    sys.exit(main())
