"""`icewatch import` progress on stderr: a line redrawn in place on a terminal, plain periodic lines
otherwise, and the summary; driven with a hand-moved clock."""

from __future__ import annotations

import io

from collector.import_progress import ImportProgress

CLEAR = "\r\x1b[K"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_come_every_interval_and_the_summary_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    progress = ImportProgress(6, out, tty=False, clock=clock, interval_s=10.0)
    progress.accepted(3)
    clock.now += 4
    progress.rejected_file()
    assert out.getvalue() == ""  # nothing before the interval has passed
    clock.now += 7
    progress.accepted(1)
    clock.now += 1
    progress.accepted(2)
    clock.now += 12
    progress.accepted(0)
    progress.accepted(1)  # the last file: the summary says it, no progress line
    progress.finish()
    assert out.getvalue().splitlines() == [
        "import: 3/6 files, 4 reports accepted, 1 rejected",
        "import: 5/6 files, 6 reports accepted, 1 rejected",
        "import: 6/6 files, 7 reports accepted, 1 rejected",
    ]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert (progress.files, progress.reports, progress.rejected) == (6, 7, 1)


def test_a_terminal_gets_one_line_redrawn_in_place_and_cleared_around_other_output() -> None:
    out, clock = io.StringIO(), Clock()
    progress = ImportProgress(3, out, tty=True, clock=clock, interval_s=0.1)
    progress.accepted(1)
    assert out.getvalue() == f"{CLEAR}import: 1/3 files, 1 report accepted, 0 rejected"
    progress.clear()
    out.write("b.json: 422 not a report\n")  # what the command writes between files
    clock.now += 0.01
    progress.rejected_file()  # redrawn at once after a clear, even within the redraw interval
    assert out.getvalue().endswith(f"{CLEAR}b.json: 422 not a report\n{CLEAR}import: 2/3 files, 1 report accepted, "
                                   "1 rejected")
    clock.now += 0.01
    progress.accepted(2)
    progress.finish()
    text = out.getvalue()
    assert text.endswith(f"{CLEAR}import: 3/3 files, 3 reports accepted, 1 rejected\n")
    assert text.count("\n") == 2  # the file's line and the summary: progress never adds a line


def test_a_stop_is_said_in_the_summary() -> None:
    out = io.StringIO()
    progress = ImportProgress(1_200, out, tty=False, clock=Clock())
    progress.accepted(1_500)
    progress.finish(stopped="cannot reach the collector at http://127.0.0.1:9")
    assert out.getvalue().splitlines()[-1] == ("import: 1/1,200 files, 1,500 reports accepted, 0 rejected; "
                                              "stopped: cannot reach the collector at http://127.0.0.1:9")
