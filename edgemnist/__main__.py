"""The `edgemnist` command and `python -m edgemnist`: Ctrl-C is taken over before anything else loads."""

import os
import signal


def _interrupted_while_starting(signum, frame) -> None:
    """Ctrl-C before the command has started anything: nothing to stop, nothing printed yet, so no
    KeyboardInterrupt traceback out of whatever module was loading. `cli.main` takes over from here."""
    os.write(2, b"interrupted\n")
    os._exit(130)


def run() -> None:
    signal.signal(signal.SIGINT, _interrupted_while_starting)
    from edgemnist.cli import main

    main()


if __name__ == "__main__":
    run()
