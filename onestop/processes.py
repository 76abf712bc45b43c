"""Stop on a signal: the one place every OneStop process turns SIGTERM and SIGINT into "stop".

A process that gets SIGTERM stops taking work, finishes what it has in hand (within
``GRACE_SECONDS``), lets go of its election locks and exits 0. The loops wait on the event these
helpers return.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Callable

# How long a process may take to finish its in-flight work after SIGTERM.
GRACE_SECONDS = 20.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals(on_stop: Callable[[], None] | None = None) -> threading.Event:
    """An event set by SIGTERM or SIGINT (installed in the main thread); ``on_stop`` runs too."""
    stop = threading.Event()

    def handle(*_: object) -> None:
        stop.set()
        if on_stop is not None:
            on_stop()

    for sig in SIGNALS:
        signal.signal(sig, handle)
    return stop


def async_stop_on_signals() -> asyncio.Event:
    """The asyncio form, for the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    return stop
