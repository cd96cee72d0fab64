"""The `edgemnist` command and `python -m edgemnist`: Ctrl-C is taken over before anything else loads."""

import os
import signal
import sys


def _interrupted_while_starting(signum, frame) -> None:
    """Ctrl-C before the command has started anything: nothing to stop, nothing printed yet, so no
    KeyboardInterrupt traceback out of whatever module was loading. `cli.main` takes over from here."""
    os.write(2, b"interrupted\n")
    os._exit(130)


def run() -> None:
    signal.signal(signal.SIGINT, _interrupted_while_starting)
    from edgemnist.cli import EXIT_INTERRUPTED, main

    try:
        main()
    except SystemExit as e:
        if e.code != EXIT_INTERRUPTED:
            raise
        # not a normal exit: a Ctrl-C that landed inside a module's import can leave CPython's own mark
        # of an unhandled interrupt, which ends the process by SIGINT (-2) whatever code was asked for
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more to say
                pass
        os._exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    run()
