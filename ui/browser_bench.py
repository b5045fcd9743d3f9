"""Key press → page idle in headless Chromium, and bytes received per slider move, for the Scores
and Langevin pages against a trivial page (ui/trivial_page.py) measured in the same run.

Run by `python -m engine bench browser` (the engine imports no Streamlit or Playwright); alone:
    python ui/browser_bench.py --moves 5      # prints one JSON object

Method: two Streamlit servers (app.py and the trivial page), one browser context per page. An
init script wraps the page's WebSocket to log each message's arrival time and size, and a
MutationObserver logs each DOM change. For a move: focus the slider, press an arrow key (moves go
one way, so every value is new and nothing comes from a cache), wait until the script is idle and
nothing has arrived or changed for QUIET_MS; latency = last message or DOM change − key press (page
clock); bytes = the sizes of the messages received in between.

A crowd (`--sessions N`): N browser sessions per page, each moving its own slider at the same
moment (the key presses a few ms apart), so the server reruns N scripts at once; every session's
move is one sample. `--train` runs a 2D training job (`python -m engine train2d`, one thread, as
the Train page starts it) in the background the whole time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
QUIET_MS = 1200

PROBE = """
(() => {
  window.__bench = {messages: [], changes: [], press: null};
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener('message', ev => {
      const d = ev.data;
      const size = d.byteLength ?? d.size ?? (d.length || 0);
      window.__bench.messages.push([performance.now(), size]);
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
  document.addEventListener('keydown', () => { window.__bench.press = performance.now(); }, true);
  new MutationObserver(() => window.__bench.changes.push(performance.now()))
    .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
})();
"""

SETTLED = """(quiet) => {
  const b = window.__bench, now = performance.now();
  const last = Math.max(b.press, ...b.messages.map(m => m[0]).slice(-50), ...b.changes.slice(-50));
  return now - last >= quiet;
}"""

RESULT = """() => {
  const b = window.__bench;
  const msgs = b.messages.filter(m => m[0] >= b.press);
  const changes = b.changes.filter(t => t >= b.press);
  const last = Math.max(b.press, ...msgs.map(m => m[0]), ...changes);
  return {latency_ms: last - b.press, bytes: msgs.reduce((s, m) => s + m[1], 0), messages: msgs.length};
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(script: str, runs: str):
    port = _free_port()
    env = dict(os.environ, SCORELAB_RUNS=runs)
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"streamlit run {script} did not start")


def _settle(page, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.locator(IDLE).count() and page.evaluate(SETTLED, QUIET_MS):
            return
        page.wait_for_timeout(50)
    raise TimeoutError("the page did not settle")


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.add_init_script(PROBE)
    page.goto(url)
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    page.wait_for_function("window.__bench !== undefined")
    page.evaluate("window.__bench.press = performance.now()")
    _settle(page)
    return page


def _move(pages: list, slider_index: int, key: str) -> list[dict]:
    """Press `key` on slider `slider_index` of every page, one right after the other, then wait
    for each to settle: one result per page."""
    sliders = [page.locator("[data-testid='stSlider'] input[type='range']").nth(slider_index)
               for page in pages]
    for page, slider in zip(pages, sliders):
        slider.focus()
        page.evaluate("window.__bench.messages = []; window.__bench.changes = []")
    for slider in sliders:
        slider.press(key)
    pages[0].wait_for_timeout(100)
    for page in pages:
        _settle(page)
    return [page.evaluate(RESULT) for page in pages]


def _training_job(runs: str) -> subprocess.Popen:
    """A long 2D training run in the background, one thread (as the Train page's job manager
    starts it), into a run folder under `runs`."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "engine", "train2d", "--steps", "200000",
                             "--threads", "1", "--quiet", "--out", str(Path(runs) / "bench-train")],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(moves: int, only: str = "", sessions: int = 1, train: bool = False) -> dict:
    """Medians (and 95th percentiles) over `moves` interleaved rounds × `sessions` browser
    sessions per page; `only`: comma-separated name fragments to keep (the trivial page always
    runs: it is the reference); `train`: a training job runs in the background throughout."""
    from playwright.sync_api import sync_playwright

    cases = [  # name, server, path, slider index on the page, key (moves go one way: no cache hits)
        ("trivial page", "trivial", "", 0, "ArrowRight"),
        ("Scores: σ", "app", "scores", 0, "ArrowRight"),
        ("Scores: w", "app", "scores", 1, "ArrowLeft"),
        ("Langevin: w", "app", "langevin", 0, "ArrowLeft"),
        ("Langevin: σ_max", "app", "langevin", 4, "ArrowLeft"),
    ]
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        cases = [c for c in cases if c[1] == "trivial" or any(w in c[0] for w in wanted)]
    with tempfile.TemporaryDirectory() as runs:
        servers = {"app": _serve("app.py", runs), "trivial": _serve("ui/trivial_page.py", runs)}
        job = _training_job(runs) if train else None
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=["--no-sandbox", "--disable-gpu"])
                pages = {}
                for name, server, path, _, _ in cases:
                    key = (server, path)
                    if key not in pages:
                        pages[key] = [_open(browser, f"{servers[server][1]}/{path}")
                                      for _ in range(sessions)]
                samples: dict = {name: [] for name, *_ in cases}
                for _ in range(moves):  # interleaved rounds: every case sees the same load
                    for name, server, path, index, key in cases:
                        samples[name] += _move(pages[(server, path)], index, key)
                browser.close()
            training_throughout = job is not None and job.poll() is None
        finally:
            if job is not None:
                job.terminate()
                job.wait(timeout=20)
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=20)
    out = {}
    floor = statistics.median(s["latency_ms"] for s in samples["trivial page"])
    floor_bytes = statistics.median(s["bytes"] for s in samples["trivial page"])
    for name, runs_ in samples.items():
        latency = statistics.median(s["latency_ms"] for s in runs_)
        size = statistics.median(s["bytes"] for s in runs_)
        out[name] = {"latency_median_ms": latency, "latency_ms": [round(s["latency_ms"]) for s in runs_],
                     "over_trivial": latency / floor, "bytes_median": size,
                     "latency_p95_ms": _p95([s["latency_ms"] for s in runs_]),
                     "bytes_over_trivial": size / max(floor_bytes, 1)}
    if train:   # a run that ended (or failed to start) early did not load every move
        out["training_job_ran_throughout"] = training_throughout
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--only", default="", help="e.g. 'Scores' or 'Langevin: w': cases to run")
    parser.add_argument("--sessions", type=int, default=1, help="browser sessions moving at once")
    parser.add_argument("--train", action="store_true", help="a training job runs meanwhile")
    args = parser.parse_args()
    print(json.dumps(measure(args.moves, args.only, args.sessions, args.train)))


if __name__ == "__main__":
    main()
