"""Progress of ``icewatch import`` on stderr: files sent, reports accepted, files rejected.

On a terminal one line is redrawn in place (at most every ``TTY_REDRAW_S``), cleared while other
output is written and ended by the final summary; otherwise (a pipe, a CI log) a plain line is
written every ``PLAIN_INTERVAL_S`` and once at the end, so a log shows progress without one line
per file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

TTY_REDRAW_S = 0.1
PLAIN_INTERVAL_S = 10.0
_CLEAR_LINE = "\r\x1b[K"


class ImportProgress:
    def __init__(self, total: int, stream: TextIO, tty: bool, clock: Callable[[], float] = time.monotonic,
                 interval_s: float | None = None) -> None:
        self.total = total
        self.files = 0
        self.reports = 0
        self.rejected = 0
        self._stream = stream
        self._tty = tty
        self._clock = clock
        self._interval = interval_s if interval_s is not None else (TTY_REDRAW_S if tty else PLAIN_INTERVAL_S)
        self._last = clock()
        self._drawn = False

    def status(self) -> str:
        return (f"{self.files:,}/{self.total:,} files, {self.reports:,} report{'s' if self.reports != 1 else ''} "
                f"accepted, {self.rejected:,} rejected")

    def accepted(self, reports: int) -> None:
        self.files += 1
        self.reports += reports
        self._tick()

    def rejected_file(self) -> None:
        self.files += 1
        self.rejected += 1
        self._tick()

    def clear(self) -> None:
        """Take the in-place line off the terminal before other output is written."""
        if self._drawn:
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()
            self._drawn = False

    def finish(self, stopped: str | None = None) -> None:
        """The summary line (``stopped``: why the import ended early)."""
        self.clear()
        ending = f"; stopped: {stopped}" if stopped else ""
        self._stream.write(f"import: {self.status()}{ending}\n")
        self._stream.flush()

    def _tick(self) -> None:
        now = self._clock()
        if self.files < self.total and now - self._last < self._interval:
            if self._tty and not self._drawn:
                self._draw()
            return
        self._last = now
        if self.files < self.total:
            self._draw()

    def _draw(self) -> None:
        if self._tty:
            self._stream.write(f"{_CLEAR_LINE}import: {self.status()}")
            self._drawn = True
        else:
            self._stream.write(f"import: {self.status()}\n")
        self._stream.flush()
