"""Progress of long work on the command line: one reporter for every CLI command (no Streamlit).

Progress goes to **stderr** (stdout stays free for the JSON or the result line a command prints).
On a terminal it is a tqdm bar with rate and ETA; in a log file or a pipe it is a plain line at the
first update, then whenever `every_seconds` have passed or the work crosses another multiple of
`every_percent`, and at the end:

    sample: level 40/95 (42%), 3.1 s elapsed, ETA 4.2 s
    train: step 300/6000 (5%), 1 min 02 s elapsed, ETA 19 min 40 s, loss 0.0412

API
    announce(text, stream=None)
        one line for a phase before it starts: "preview grid at step 500: sampling 16 images…";
        on a terminal it is printed above a running bar without breaking it.
    Reporter(label, total, unit="step", stream=None, every_seconds=5, every_percent=10, tty=None,
             initial=0)
        .update(done, eta=None, total=None, **fields)
                                  `done` of `total` finished (an absolute count, not an increment,
                                  whole or fractional: 4.5 images, ODE time 0.42 of 1;
                                  counting from `initial`, e.g. a resumed step, for the rate);
                                  `fields` (e.g. loss=0.04) are shown after it; `eta` (seconds)
                                  replaces the rate estimate, e.g. when a time budget ends the work
                                  sooner; `total` changes the total
        .callback()               a function f(done, total, *rest) → update(done, total=total):
                                  what engine callbacks such as sample_images' progress take
        .close()                  ends the bar (also `with Reporter(...) as r:`)
    eta_seconds(done, total, elapsed)   the rate estimate elapsed·(total − done)/done (None before
                                        the first unit is done); a Reporter measures the rate from
                                        its first update (setup before it does not count)
    format_seconds(s)                   '3.1 s', '4 min 05 s', '1 h 02 min'
    progress_line(label, unit, done, total, elapsed, eta, fields)   the plain line above

Engine code that also runs inside the app or the tests (the training loop) stays silent unless a
command asked for progress:
    enable() / disable() / enabled()    `python -m engine` enables it for the command it runs
    reporter(label, total, unit, initial=0)  a Reporter when enabled, else one that prints nothing
    phase(text)                         announce(text) when enabled

`tty` (default: stream.isatty()) picks the bar or the plain lines; tests pass tty=False and a
`clock` to check the lines and the arithmetic.
"""

from __future__ import annotations

import os
import sys
import time


def eta_seconds(done: float, total: float, elapsed: float) -> float | None:
    """Time left at the mean rate so far: elapsed · (total − done) / done."""
    if done <= 0 or total <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    seconds = int(round(seconds))
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _count(v) -> str:
    """12 → '12'; 4.5 → '4.5' (work measured in fractions: images of an ODE batch, ODE time)."""
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"


def progress_line(label: str, unit: str, done: float, total: float, elapsed: float, eta: float | None,
                  fields: dict | None = None) -> str:
    """'sample: level 40/95 (42%), 3.1 s elapsed, ETA 4.2 s[, name value …]'."""
    pct = int(100 * done / total) if total else 100
    parts = [f"{label}: {unit + ' ' if unit else ''}{_count(done)}/{_count(total)} ({pct}%)",
             f"{format_seconds(elapsed)} elapsed"]
    if done < total and eta is not None:
        parts.append(f"ETA {format_seconds(eta)}")
    parts += [f"{k.replace('_', ' ')} {_value(v)}" for k, v in (fields or {}).items() if v is not None]
    return ", ".join(parts)


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def announce(text: str, stream=None) -> None:
    """One line for a phase that is about to start (above a running bar on a terminal)."""
    stream = stream or sys.stderr
    if _is_tty(stream):
        from tqdm import tqdm
        tqdm.write(text, file=stream)
    else:
        stream.write(text + "\n")
        stream.flush()


class Reporter:
    """A progress bar (terminal) or periodic plain lines (otherwise) for `total` units of work."""

    BAR_REFRESH = 0.1        # seconds between redraws of the terminal bar

    def __init__(self, label: str, total: int, unit: str = "step", stream=None,
                 every_seconds: float = 5.0, every_percent: float = 10.0, tty: bool | None = None,
                 initial: int = 0, clock=time.perf_counter):
        self.label, self.total, self.unit = label, max(total, 0), unit
        self.stream = stream or sys.stderr
        # a terminal that reports no size (some ptys) gets the plain lines: tqdm would draw nothing
        self.tty = _is_tty(self.stream) and _columns(self.stream) > 0 if tty is None else tty
        self.every_seconds, self.every_percent = every_seconds, every_percent
        self.clock = clock
        self.start = clock()
        self.initial = self.done = initial
        self.first: tuple[float, float] | None = None        # (time, done) of the first update
        self.last_line: tuple[float, float] | None = None   # (time, percent) of the last plain line
        self.last_draw = -1.0
        self.bar = None
        if self.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, initial=self.initial, desc=label, unit=unit,
                            file=self.stream, dynamic_ncols=True, leave=True)

    def rate_eta(self, done: float, elapsed: float) -> float | None:
        """The mean rate since the first update (setup before it does not count); until the
        work has moved on from there, since the start (counting from `initial`)."""
        if self.first is not None and done > self.first[1]:
            t, d = self.first
            return eta_seconds(done - d, self.total - d, elapsed - t)
        return eta_seconds(done - self.initial, self.total - self.initial, elapsed)

    def update(self, done: float, eta: float | None = None, total: float | None = None,
               **fields) -> None:
        if total is not None and total != self.total:
            self.total = max(total, 0)
            if self.bar is not None:
                self.bar.total = self.total
        done = min(done, self.total) if self.total else done
        self.done = done
        elapsed = self.clock() - self.start
        rate_eta = self.rate_eta(done, elapsed)
        if self.first is None:
            self.first = (elapsed, done)
        if eta is None:
            eta = rate_eta
        if self.bar is not None:
            if elapsed - self.last_draw < self.BAR_REFRESH and done < self.total:
                return
            self.last_draw = elapsed
            self.bar.n = done
            shown = {k.replace("_", " "): _value(v) for k, v in fields.items() if v is not None}
            if eta is not None and (rate_eta is None or eta < rate_eta - 0.5):
                shown["stops in"] = format_seconds(eta)    # a time budget ends it sooner
            self.bar.set_postfix(shown, refresh=False)
            self.bar.refresh()
            return
        percent = 100.0 * done / self.total if self.total else 100.0
        due = (self.last_line is None or (done >= self.total and self.last_line[1] < 100)
               or elapsed - self.last_line[0] >= self.every_seconds
               or percent // self.every_percent > self.last_line[1] // self.every_percent)
        if due:
            self.last_line = (elapsed, percent)
            self.stream.write(progress_line(self.label, self.unit, done, self.total, elapsed, eta,
                                            fields) + "\n")
            self.stream.flush()

    def callback(self):
        """f(done, total, *rest) → self.update(done, total=total): for engine progress callbacks."""
        def report(done, total=None, *rest, **kw):
            self.update(done, total=total)
        return report

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent(Reporter):
    """What `reporter` gives when progress is off: the same methods, no output."""

    def __init__(self, label: str = "", total: int = 0, unit: str = "step", **kw):
        self.label, self.total, self.unit, self.done, self.bar = label, total, unit, 0, None

    def update(self, done: int, eta: float | None = None, total: int | None = None, **fields) -> None:
        self.done = done

    def close(self) -> None:
        pass


_enabled = False


def enable() -> None:
    """Show the progress of `reporter` and `phase` (on stderr) from now on."""
    global _enabled
    _enabled = True


def disable() -> None:
    global _enabled
    _enabled = False


def enabled() -> bool:
    return _enabled


def reporter(label: str, total: int, unit: str = "step", initial: int = 0) -> Reporter:
    """A Reporter on stderr when progress is enabled, else one that prints nothing."""
    return Reporter(label, total, unit, initial=initial) if _enabled else _Silent(label, total, unit)


def phase(text: str) -> None:
    """announce(text) on stderr when progress is enabled."""
    if _enabled:
        announce(text)
