"""Script time of Langevin page reruns after slider changes, measured with Streamlit's AppTest.

Run by `python -m engine bench mixing` (the engine itself imports no Streamlit); on its own:
    python page_bench.py --repeats 3      # prints one JSON object
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def page_rerun_times(repeats: int) -> dict:
    """Time AppTest reruns of the Langevin page after slider changes (each value new, so not a
    cache hit), the first run excluded. AppTest time = script time + AppTest's own bookkeeping,
    so it is an upper bound on the script time."""
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("app_pages/langevin.py").run()
    if at.exception:
        raise RuntimeError(f"the Langevin page failed: {at.exception[0].message}")

    cpu = {}

    def timed(name, change) -> float:
        """Wall time of one rerun; its CPU time (all threads of this process: the script runs in
        AppTest's thread) goes to `cpu` — on a busy machine CPU time is what a quiet one would
        see as wall time, since waiting for a core is not counted."""
        change()
        start, start_cpu = time.perf_counter(), time.process_time()
        at.run()
        elapsed = time.perf_counter() - start
        cpu.setdefault(name, []).append(1e3 * (time.process_time() - start_cpu))
        if at.exception:
            raise RuntimeError(f"the Langevin page failed: {at.exception[0].message}")
        return elapsed

    out = {}
    weights = [0.75, 0.7, 0.65, 0.6, 0.55, 0.5][:repeats]
    out["weight_slider_ms"] = [1e3 * timed("weight_slider", lambda w=w: at.slider(key="lv_w").set_value(w))
                               for w in weights]
    smax = [19.5, 19.0, 18.5, 18.0, 17.5, 17.0][:repeats]
    out["sigma_max_slider_ms"] = [1e3 * timed("sigma_max_slider",
                                              lambda s=s: at.slider(key="lv_smax").set_value(s))
                                  for s in smax]
    out["cached_rerun_ms"] = [1e3 * timed("cached_rerun", lambda: None) for _ in range(max(1, repeats))]
    for key in list(out):
        out[key.replace("_ms", "_median_ms")] = statistics.median(out[key])
        out[key.replace("_ms", "_cpu_median_ms")] = statistics.median(cpu[key.removesuffix("_ms")])
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    print(json.dumps(page_rerun_times(parser.parse_args().repeats)))
