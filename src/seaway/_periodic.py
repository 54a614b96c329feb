"""A daemon thread that does one pass of work every few seconds, for the parts that keep
something going beside their caller: the gateway's telemetry flush and abuse judge, and the
webhook alert sender.

    loop = Periodic("seaway-alerts", 1.0, worker.tick, log=log)
    loop.start()   # idempotent
    loop.stop()    # waits for the pass in progress; the thread can be started again

A pass that raises is logged and the next one runs on time: a background loop must outlive
a store that is briefly out of reach.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class Periodic:
    """Calls `step` every `interval_s` in a daemon thread. `first` runs once in the thread
    before anything else (slow set-up kept off the caller's thread); `immediate` runs a pass
    at once instead of after the first interval."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        step: Callable[[], object],
        *,
        log: logging.Logger,
        first: Callable[[], object] | None = None,
        immediate: bool = False,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._step = step
        self._first = first
        self._immediate = immediate
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _pass(self, what: Callable[[], object]) -> None:
        try:
            what()
        except Exception as exc:
            self._log.warning(
                "%s: a pass failed (the next one runs on time): %s",
                self.name,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                exc_info=self._log.isEnabledFor(logging.DEBUG),
            )

    def _run(self) -> None:
        if self._first is not None:
            self._pass(self._first)
        if self._immediate:
            self._pass(self._step)
        while not self._stop.wait(self.interval_s):
            self._pass(self._step)
