"""python -m engine bench mixing: the exact-score mixture sampler's throughput in particle-steps/s,
the fused numba kernel (noise drawn inside it) against the torch path (torch.randn noise, the
reference) and a plain NumPy loop of the same chain in the same run (one chain, and the page's
plain + annealed pair); the fused kernel's first call in a fresh process, from numba's on-disk
cache and compiled from scratch; and the script time of a Langevin page rerun after a slider
change at the defaults (AppTest in ui/page_bench.py, run as a subprocess: the engine imports no
Streamlit; first run excluded). Measurements, not tests: ratios hold on a noisy machine, absolute
times do not.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time

from engine.paths import PROJECT_ROOT
from engine.progress import phase


def add_arguments(p) -> None:
    p.add_argument("--particles", type=int, default=1000, help="particles of each chain")
    p.add_argument("--steps", type=int, default=1000, help="Langevin steps per measurement")
    p.add_argument("--repeats", type=int, default=3, help="measurements; the median is reported")
    p.add_argument("--no-page", action="store_true", help="skip the page-rerun measurement")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


# -- sampler throughput ----------------------------------------------------------------------

def _numpy_chain(x0, means, variances, weights, step_size: float, steps: int, seed: int):
    """The same plain Langevin chain written as a direct NumPy loop (float32, like the engine)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = x0.astype(np.float32).copy()
    mu = means[:, None, :].astype(np.float32)                      # (K, 1, d)
    neg_inv_var = (-1.0 / variances)[:, None, :].astype(np.float32)
    const = (np.log(weights) - 0.5 * np.log(variances).sum(-1))[:, None].astype(np.float32)
    noise = rng.standard_normal((steps, *x.shape), dtype=np.float32) * np.float32(math.sqrt(step_size))
    half = np.float32(step_size / 2)
    for t in range(steps):
        diff = x[None] - mu                                         # (K, N, d)
        scaled = diff * neg_inv_var                                 # −(x − μ_k)/v_k
        logits = const + 0.5 * (diff * scaled).sum(-1)
        logits -= logits.max(0)
        e = np.exp(logits)
        resp = e / e.sum(0)
        score = (resp[..., None] * scaled).sum(0)
        x = x + half * score + noise[t]
    return x


def _throughput(particles: int, steps: int, repeats: int) -> dict:
    import numpy as np
    import torch

    from engine.samplers import mixture_kernel
    from engine.device import small_tensor_threads
    from engine.samplers.langevin import (init_particles, langevin_dynamics, mixture_langevin_chains,
                                          plain_schedule)
    from engine.targets import seeds_mixture

    mixture = seeds_mixture()
    x0 = init_particles("uniform:-8,8", particles, 2, generator=torch.Generator().manual_seed(0))
    schedule = plain_schedule(0.1, steps)
    means = np.array(mixture.means, dtype=np.float64)
    variances = np.array(mixture.stds, dtype=np.float64) ** 2
    weights = np.array(mixture.weights, dtype=np.float64)
    from engine.lab.mixing import MixConfig, schedule_for
    # The page's way: plain and annealed (L·T = steps) advance together.
    pair = [schedule_for(MixConfig(sampler="langevin", steps=steps)),
            schedule_for(MixConfig(sampler="annealed", steps=max(1, steps // 10)))]
    has_pair = pair[0].total_steps == pair[1].total_steps

    def seeds(r):
        return [torch.Generator().manual_seed(1 + r) for _ in pair]

    runs = {  # name → (function of the repeat index, particle-steps per call)
        "torch": (lambda r: langevin_dynamics(mixture.score, x0, schedule,
                                              torch.Generator().manual_seed(1 + r)).x, 1),
        "numpy": (lambda r: torch.from_numpy(_numpy_chain(x0.numpy(), means, variances, weights,
                                                          0.1, steps, seed=1 + r)), 1),
    }
    if mixture_kernel.available:
        runs["fused"] = (lambda r: mixture_langevin_chains(mixture, [x0], [schedule], seeds(r)[:1],
                                                           fused=True)[0].x, 1)
    if has_pair:
        runs["torch_pair"] = (lambda r: mixture_langevin_chains(mixture, [x0, x0], pair, seeds(r),
                                                                fused=False), 2)
        if mixture_kernel.available:
            runs["fused_pair"] = (lambda r: mixture_langevin_chains(mixture, [x0, x0], pair, seeds(r),
                                                                    fused=True), 2)
    times: dict = {name: [] for name in runs}
    last: dict = {}
    with small_tensor_threads(particles * 2), torch.inference_mode():
        threads = torch.get_num_threads()
        for name, (fn, _) in runs.items():  # warm-up (compiles or loads the numba cache)
            fn(0)
        for r in range(repeats):  # interleaved, so all see the same machine load
            for name, (fn, _) in runs.items():
                start = time.process_time()
                last[name] = fn(r)
                times[name].append(time.process_time() - start)
    from engine.metrics import mode_weights

    work = particles * steps
    out = {"particles": particles, "steps": steps, "repeats": repeats, "torch_threads": threads,
           "fused_available": mixture_kernel.available}
    for name, (_, chains) in runs.items():
        median = statistics.median(times[name])
        out[f"{name}_particle_steps_per_s"] = chains * work / median
        out[f"{name}_us_per_step"] = 1e6 * median / steps
        if chains == 1:  # the same chain (different noise draws): weights near ½, ½
            out[f"{name}_mode_weights"] = [round(float(v), 3) for v in mode_weights(last[name], mixture)]
    rate = {name: out[f"{name}_particle_steps_per_s"] for name in runs}
    out["torch_over_numpy"] = rate["torch"] / rate["numpy"]
    if "fused" in rate:
        out["fused_over_numpy"] = rate["fused"] / rate["numpy"]
        out["fused_over_torch"] = rate["fused"] / rate["torch"]
    if "fused_pair" in rate:
        out["fused_pair_over_torch_pair"] = rate["fused_pair"] / rate["torch_pair"]
    return out


# -- first call: numba's compile or cache load --------------------------------------------------

_FIRST_CALL = """
import time, torch
from engine.samplers.langevin import mixture_langevin_chains, plain_schedule
from engine.targets import seeds_mixture
start = time.perf_counter()
mixture_langevin_chains(seeds_mixture(), [torch.zeros(10, 2)], [plain_schedule(0.1, 10)],
                        [torch.Generator().manual_seed(0)], fused=True)
print(time.perf_counter() - start)
"""


def _first_call() -> dict:
    """Seconds of the fused kernel's first call in a fresh process (imports excluded): with the
    on-disk cache (cache=True; the first run writes it), and compiling into an empty cache."""
    import os
    import subprocess
    import tempfile

    def once(env: dict) -> float:
        proc = subprocess.run([sys.executable, "-c", _FIRST_CALL], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise ValueError(f"the first-call measurement failed: {proc.stderr.strip().splitlines()[-1]}")
        return float(proc.stdout.strip().splitlines()[-1])

    env = dict(os.environ)
    once(env)                                             # fills the cache if it is empty
    with tempfile.TemporaryDirectory() as empty:
        return {"cached_s": once(env), "compile_s": once({**env, "NUMBA_CACHE_DIR": empty})}


# -- page rerun time ---------------------------------------------------------------------------

def _page_rerun(repeats: int) -> dict:
    """Langevin page rerun times, measured by page_bench.py (next to app.py: the engine imports
    no Streamlit) in a subprocess, then the sampling a weight change triggers, timed alone."""
    import subprocess

    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / "ui" / "page_bench.py"), "--repeats", str(repeats)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or "no output").splitlines()
        raise ValueError(f"the page benchmark failed: {lines[-1]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    # Where the time goes: the sampling a weight change triggers, timed alone — both samplers
    # batched (run_mixes), and one after the other (run_mix ×2: the page caches each sampler on
    # its own config).
    from dataclasses import replace

    from engine.lab.mixing import MixConfig, run_mix, run_mixes
    base = MixConfig(weights=(0.45, 0.55), record_every=25, record_particles=300)
    batched, separate, batched_cpu = [], [], []
    for _ in range(repeats):
        pair = (replace(base, sampler="langevin", steps=1000), replace(base, sampler="annealed"))
        start, start_cpu = time.perf_counter(), time.process_time()
        run_mixes(pair)
        batched.append(time.perf_counter() - start)
        batched_cpu.append(time.process_time() - start_cpu)
        start = time.perf_counter()
        for config in pair:
            run_mix(config)
        separate.append(time.perf_counter() - start)
        base = replace(base, weights=(base.weights[0] - 0.01, base.weights[1] + 0.01))
    out["both_samplers_batched_ms"] = 1e3 * statistics.median(batched)
    out["both_samplers_batched_cpu_ms"] = 1e3 * statistics.median(batched_cpu)
    out["both_samplers_separate_ms"] = 1e3 * statistics.median(separate)
    return out


def run(args) -> int:
    try:
        with open("/proc/loadavg") as f:
            load = float(f.read().split()[0])
    except OSError:
        load = float("nan")
    phase(f"bench mixing: sampler throughput, {args.particles} particles × {args.steps} steps, "
          f"{args.repeats} repeats of each path…")
    result = {"load_average_1min": load, "throughput": _throughput(args.particles, args.steps,
                                                                   args.repeats)}
    if result["throughput"]["fused_available"]:
        phase("bench mixing: the fused kernel's first call in fresh processes…")
        result["first_call"] = _first_call()
    if not args.no_page:
        phase(f"bench mixing: Langevin page reruns (AppTest), {args.repeats} repeats…")
        result["page"] = _page_rerun(args.repeats)
    if args.json:
        print(json.dumps(result))
        return 0
    t = result["throughput"]
    print(f"machine load (1 min): {load:.2f}")
    print(f"exact-score plain Langevin, {t['particles']} particles × {t['steps']} steps, CPU time, "
          f"median of {t['repeats']} (torch threads: {t['torch_threads']}):")
    for name, what in (("fused", "fused kernel (numba)"), ("torch", "torch path"), ("numpy", "plain NumPy")):
        if f"{name}_particle_steps_per_s" in t:
            print(f"  {what:<22}{t[name + '_particle_steps_per_s']:>14,.0f} particle-steps/s  "
                  f"({t[name + '_us_per_step']:.0f} µs/step)  weights {t[name + '_mode_weights']}")
    if "fused_over_torch" in t:
        print(f"  fused / torch  {t['fused_over_torch']:.2f}x    fused / NumPy  {t['fused_over_numpy']:.2f}x"
              f"    (torch / NumPy {t['torch_over_numpy']:.2f}x)")
    else:
        print(f"  numba is not installed: torch / NumPy {t['torch_over_numpy']:.2f}x")
    if "torch_pair_particle_steps_per_s" in t:
        print("plain + annealed pair as on the page (both chains' particle-steps):")
        for name, what in (("fused_pair", "fused kernel"), ("torch_pair", "torch, batched")):
            if f"{name}_particle_steps_per_s" in t:
                print(f"  {what:<22}{t[name + '_particle_steps_per_s']:>14,.0f} particle-steps/s")
        if "fused_pair_over_torch_pair" in t:
            print(f"  fused / torch  {t['fused_pair_over_torch_pair']:.2f}x")
    if "first_call" in result:
        f = result["first_call"]
        print(f"fused kernel's first call in a fresh process: {f['cached_s']:.2f} s from numba's "
              f"on-disk cache, {f['compile_s']:.2f} s compiling from scratch")
    if "page" in result:
        p = result["page"]
        print("Langevin page rerun at the defaults (AppTest, first run excluded; wall time is an "
              "upper bound on script time, CPU time excludes waiting for a busy core):")
        for key, what in (("weight_slider", "weight slider (both samplers rerun)"),
                          ("sigma_max_slider", "σ_max slider (the annealed one reruns)"),
                          ("cached_rerun", "rerun, nothing changed (cached)")):
            print(f"  {what:<36} wall median {p[key + '_median_ms']:>5.0f} ms "
                  f"{[round(v) for v in p[key + '_ms']]}   CPU median {p[key + '_cpu_median_ms']:>5.0f} ms")
        print(f"  sampling alone (both samplers): batched {p['both_samplers_batched_ms']:.0f} ms "
              f"(CPU {p['both_samplers_batched_cpu_ms']:.0f} ms), one after the other as the page "
              f"{p['both_samplers_separate_ms']:.0f} ms (medians)")
    return 0
