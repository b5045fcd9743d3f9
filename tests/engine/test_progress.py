"""engine.progress: the plain lines a log file gets, the ETA arithmetic, the terminal bar."""

import io

import pytest

from engine.progress import Reporter, announce, eta_seconds, format_seconds, progress_line


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_eta_is_the_mean_rate_times_what_is_left():
    assert eta_seconds(40, 95, 3.2) == pytest.approx(3.2 * 55 / 40)
    assert eta_seconds(10, 10, 5.0) == 0.0
    assert eta_seconds(0, 10, 5.0) is None


def test_format_seconds():
    assert format_seconds(3.14) == "3.1 s"
    assert format_seconds(245) == "4 min 05 s"
    assert format_seconds(3720) == "1 h 02 min"


def test_progress_line_reads_like_a_sentence():
    line = progress_line("sample", "level", 40, 95, 3.1, 4.2)
    assert line == "sample: level 40/95 (42%), 3.1 s elapsed, ETA 4.2 s"
    assert progress_line("train", "step", 5, 5, 2.0, 0.0, {"loss": 0.041234}) == \
        "train: step 5/5 (100%), 2.0 s elapsed, loss 0.04123"


def test_plain_lines_every_few_seconds_or_percent_and_at_the_end():
    out, clock = io.StringIO(), Clock()
    r = Reporter("train", 1000, stream=out, tty=False, every_seconds=5, every_percent=10, clock=clock)
    for done in range(1, 1001):
        clock.t += 0.001                     # 1 s in all: only the percent rule fires
        r.update(done, loss=1.0 / done)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("train: step 1/1000 (0%)")
    assert [ln.split()[2] for ln in lines] == ["1/1000"] + [f"{k}/1000" for k in range(100, 1001, 100)]
    assert lines[-1].startswith("train: step 1000/1000 (100%), 1.0 s elapsed, loss")
    r.update(1000)                           # the end is said once
    assert len(out.getvalue().splitlines()) == len(lines)


def test_plain_line_when_seconds_pass_with_its_eta():
    out, clock = io.StringIO(), Clock()
    r = Reporter("sample", 95, unit="level", stream=out, tty=False, every_seconds=5, every_percent=100,
                 clock=clock)
    clock.t += 1.0
    r.update(1)
    clock.t += 3.0
    r.update(2)                              # 4 s since the first line: not yet
    clock.t += 2.0
    r.update(3)                              # 6 s: a line; the rate since the first update, 5 s / 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0] == f"sample: level 1/95 (1%), 1.0 s elapsed, ETA {format_seconds(94.0)}"
    assert lines[1] == f"sample: level 3/95 (3%), 6.0 s elapsed, ETA {format_seconds(5 / 2 * 92)}"


def test_eta_given_by_the_caller_wins():
    out, clock = io.StringIO(), Clock()
    r = Reporter("train", 100, stream=out, tty=False, clock=clock)
    clock.t += 10
    r.update(10, eta=2.5)
    assert "ETA 2.5 s" in out.getvalue()


def test_callback_takes_engine_style_arguments():
    out = io.StringIO()
    r = Reporter("sample", 4, unit="level", stream=out, tty=False)
    cb = r.callback()
    for i in range(1, 5):
        cb(i, 4, object())
    assert out.getvalue().splitlines()[-1].startswith("sample: level 4/4 (100%)")


def test_announce_is_one_line():
    out = io.StringIO()
    announce("preview grid at step 500: sampling 16 images…", stream=out)
    assert out.getvalue() == "preview grid at step 500: sampling 16 images…\n"


def test_terminal_bar_through_tqdm():
    out = io.StringIO()
    with Reporter("train", 10, stream=out, tty=True) as r:
        r.update(5, loss=0.5)
        r.update(10, loss=0.25)
    text = out.getvalue()
    assert "train" in text and "10/10" in text and "loss=0.25" in text


def test_a_resumed_count_rates_only_the_work_done_here():
    out, clock = io.StringIO(), Clock()
    r = Reporter("train", 1000, stream=out, tty=False, initial=500, clock=clock)
    clock.t += 10
    r.update(600)                            # 100 steps in 10 s, 400 left: 40 s
    assert out.getvalue().splitlines()[-1] == "train: step 600/1000 (60%), 10.0 s elapsed, ETA 40.0 s"


def test_callback_can_set_the_total():
    out = io.StringIO()
    cb = Reporter("preview", 0, unit="level", stream=out, tty=False).callback()
    cb(1, 95, None)
    assert out.getvalue().startswith("preview: level 1/95 (1%)")


def test_reporter_and_phase_print_only_when_enabled(capsys):
    import engine.progress as progress

    assert not progress.enabled()
    progress.reporter("train", 10).update(10)
    progress.phase("step 5: preview…")
    assert capsys.readouterr().err == ""
    progress.enable()
    try:
        progress.phase("step 5: preview…")
        with progress.reporter("train", 10, initial=2) as r:
            r.update(10)
    finally:
        progress.disable()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "step 5: preview…" and err[1].startswith("train: step 10/10 (100%)")


def test_fractional_work_reads_as_fractions():
    assert progress_line("nll", "t", 0.42, 1.0, 2.0, eta_seconds(0.42, 1.0, 2.0)) == \
        f"nll: t 0.42/1 (42%), 2.0 s elapsed, ETA {format_seconds(2.0 * 0.58 / 0.42)}"
    assert progress_line("bits/dim", "image", 4.5, 16, 1.0, None).startswith("bits/dim: image 4.5/16 (28%)")
