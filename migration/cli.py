"""What both migration command lines share."""

from __future__ import annotations

import signal
import sys
import threading


def stop_on_ctrl_c(prog: str, running: str) -> threading.Event:
    """Ctrl-C asks the migration to stop once `running` is done; a second Ctrl-C stops at once
    (each batch is written with its checkpoint, so a rerun still resumes cleanly)."""
    stop = threading.Event()

    def handler(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(f"{prog}: stopping after {running} (Ctrl-C again to stop now)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    return stop
