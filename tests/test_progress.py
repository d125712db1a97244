"""The terminal progress bar: what it says, and that it stays silent off a terminal."""

from __future__ import annotations

import io

import pytest

from edgeaffect.progress import ProgressBar


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_frames_total_fps_and_eta():
    clk = Clock()
    bar = ProgressBar(total=300, label="run", stream=Tty(), clock=clk, interval_s=0)
    for i in range(0, 101):
        clk.t = 100.0 + i / 50  # 50 fps
        bar.update(i)
    line = bar.line()
    assert "100/300 frames" in line and "50.0 fps" in line
    assert "ETA 0:04" in line          # 200 frames left at 50 fps
    assert " 33%" in line and line.startswith("run [")


def test_total_read_late_and_unknown_total():
    clk = Clock()
    source_total: list[int | None] = [None]
    bar = ProgressBar(total=lambda: source_total[0], stream=Tty(), clock=clk, interval_s=0)
    bar.update(10)
    clk.t += 65
    bar.update(20)
    assert "20 frames" in bar.line() and "1:05 elapsed" in bar.line() and "[" not in bar.line()  # camera / --loop
    source_total[0] = 40                   # a file source knows its length once opened
    assert "20/40 frames" in bar.line() and " 50%" in bar.line()


def test_time_bounded_bench_fills_with_time():
    clk = Clock()
    bar = ProgressBar(duration_s=60, stream=Tty(), clock=clk, interval_s=0)
    bar.update(0)
    clk.t += 15
    bar.update(1500)
    line = bar.line()
    assert " 25%" in line and "1,500 frames" in line and "ETA 0:45" in line and "100.0 fps" in line


def test_silent_when_not_a_terminal_or_disabled():
    for bar in (ProgressBar(total=5, stream=io.StringIO(), interval_s=0), ProgressBar(total=5, stream=Tty(), enabled=False)):
        for _ in range(5):
            bar.advance()
        bar.close()
        assert bar.stream.getvalue() == "" and bar.done == 5


def test_redraws_are_throttled_and_close_erases():
    clk = Clock()
    out = Tty()
    bar = ProgressBar(total=1000, stream=out, clock=clk, interval_s=0.5)
    for _ in range(100):
        clk.t += 0.01                       # 1 s in total -> at most 3 draws
        bar(object())                       # as a per-result callback
    assert 1 <= out.getvalue().count("\r") <= 3 and bar.done == 100
    bar.close()
    assert out.getvalue().endswith("\r") and out.getvalue().rstrip("\r").endswith(" ")


def test_narrow_terminal_keeps_the_numbers(monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    clk = Clock()
    bar = ProgressBar(total=300, label="run", stream=Tty(), clock=clk, interval_s=0)
    for i in range(101):
        clk.t = 100.0 + i / 50
        bar.update(i)
    line = bar.line()
    assert len(line) < 50 and "[" not in line and "33%" in line and "ETA 0:04" in line


def test_run_loop_hook_drives_the_bar(tmp_path):
    """session.run_source's on_progress hook: frames and total from the run loop."""
    from edgeaffect.session import Progress

    clk = Clock()
    bar = ProgressBar(total=lambda: 99, stream=Tty(), clock=clk, interval_s=0)
    bar.on_progress(Progress(5, None, 1.0))            # the loop does not know the length: the lazy total stays
    assert "5/99 frames" in bar.line()
    clk.t += 1
    bar.on_progress(Progress(10, 40, 2.0))             # it does: its total wins
    assert "10/40 frames" in bar.line() and " 25%" in bar.line()


def test_a_log_line_erases_the_bar_first():
    import logging

    out = Tty()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        clk = Clock()
        with ProgressBar(total=10, stream=out, clock=clk, interval_s=0) as bar:
            bar.update(3)
            logging.getLogger("edgeaffect.capture").warning("camera lost, retrying")
            text = out.getvalue()
            # the bar's line was blanked, then the message written from the start of the line
            assert text.endswith("\r" + " " * len(bar.line()) + "\rcamera lost, retrying\n"), repr(text[-120:])
            bar.update(4)
            assert out.getvalue().endswith(bar.line())  # redrawn on the next frame
        assert not handler.filters  # the hook is removed when the bar closes
    finally:
        root.removeHandler(handler)
