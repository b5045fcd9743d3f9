"""python -m engine bench browser: key press → page idle in headless Chromium, and the bytes a
slider move sends over the websocket, on the Scores and Langevin pages against a trivial page (one
slider, a 1000-point Plotly scatter) measured in the same run. The browser work runs in
ui/browser_bench.py as a subprocess (the engine imports no Streamlit or Playwright).
Targets (issue 9): each page ≤ 1.5× the trivial page's latency and ≤ 100 KB per move.
A measurement, not a test: ratios hold on a noisy machine, absolute times do not.
"""

from __future__ import annotations

import json
import subprocess
import sys

from engine.paths import PROJECT_ROOT


def add_arguments(p) -> None:
    p.add_argument("--moves", type=int, default=5, help="slider moves per case; medians are reported")
    p.add_argument("--only", default="", help="comma-separated name fragments of the cases to run, "
                   "e.g. 'Langevin' (the trivial page always runs)")
    p.add_argument("--sessions", type=int, default=1, help="browser sessions per page moving their "
                   "sliders at the same moment (a class on one server); every session's move is a sample")
    p.add_argument("--train", action="store_true", help="run a 2D training job in the background "
                   "meanwhile, as the Train page would")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args) -> int:
    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / "ui" / "browser_bench.py"),
                           "--moves", str(args.moves), "--only", args.only,
                           "--sessions", str(args.sessions)] + (["--train"] if args.train else []),
                          cwd=PROJECT_ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or "no output").splitlines()
        raise ValueError(f"the browser benchmark failed: {lines[-1]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    try:
        with open("/proc/loadavg") as f:
            result["load_average_1min"] = float(f.read().split()[0])
    except OSError:
        pass
    if args.json:
        print(json.dumps(result))
        return 0
    crowd = (f", {args.sessions} sessions moving at once" if args.sessions > 1 else "") + \
        (", a training job running" if args.train else "")
    if args.train and not result.get("training_job_ran_throughout"):
        crowd += " (it ended before the last move)"
    print(f"headless Chromium, key press → page idle, median of {args.moves * args.sessions} moves"
          f"{crowd} (machine load {result.get('load_average_1min', float('nan')):.2f}):")
    print(f"  {'slider':<18} {'latency':>9} {'× trivial':>10} {'p95':>9} {'KB/move':>9} {'× trivial':>10}"
          "   each move (ms)")
    for name, r in result.items():
        if not isinstance(r, dict):
            continue
        print(f"  {name:<18} {r['latency_median_ms']:>7.0f} ms {r['over_trivial']:>9.2f}x "
              f"{r['latency_p95_ms']:>6.0f} ms {r['bytes_median'] / 1e3:>9.1f} {r['bytes_over_trivial']:>9.2f}x"
              f"   {r['latency_ms']}")
    return 0
