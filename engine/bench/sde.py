"""python -m engine bench sde: quality against cost for the SDE samplers on a 2D mixture.

For each budget B of score evaluations (NFE): reverse-SDE Euler–Maruyama with N = B steps,
predictor–corrector with N = B/2 (one corrector step each), annealed Langevin with 10 levels of
B/10 steps (the NCSN toy baseline: σ 20 → 1, ε = 0.1, particles from U[−8, 8]², final denoising
step), and the probability-flow ODE, whose cost is set by its tolerance, so it is run at a
ladder of tolerances and placed at the NFE it used. Error figures: the TV distance between the
recovered and the true mode weights, and the sliced Wasserstein distance to exact samples,
averaged over seeds. The exact marginal score is used, so only the sampler's own error shows.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext

from engine.lab.mixing import MixConfig, run_mix
from engine.lab.sde_mixing import SDEMixConfig, run_sde_mix
from engine.progress import reporter

ODE_TOLERANCES = (1e-1, 3e-2, 1e-2, 1e-3, 1e-5)


def _annealed(budget: int, base: SDEMixConfig, seed: int):
    levels = 10
    steps = max(1, budget // levels)
    cfg = MixConfig(means=base.means, weights=base.weights, stds=base.stds, sampler="annealed",
                    particles=base.particles, steps=steps, step_size=0.1,
                    sigma_max=20.0, sigma_min=1.0, levels=levels, seed=seed, denoise=True)
    return run_mix(cfg).summary()


def nfe_sweep(base: SDEMixConfig, budgets=(20, 50, 100, 200, 500), seeds=(0, 1),
              samplers=("sde", "pc", "ode", "annealed"), tolerances=ODE_TOLERANCES,
              progress=None) -> list[dict]:
    """Rows {sampler, budget, nfe, weight_error, sliced_wasserstein, seconds} averaged over seeds.
    Diverged runs are reported with error None and the message. progress(rows_done, rows) after
    every row."""
    from engine.samplers.langevin import SamplerDiverged

    rows = []
    total = sum(len(tolerances) if s == "ode" else len(budgets) for s in samplers)

    def average(sampler, budget, runs):
        ok = [r for r in runs if "error" not in r]
        row = {"sampler": sampler, "budget": budget}
        if not ok:
            row.update(nfe=None, weight_error=None, sliced_wasserstein=None, seconds=None,
                       error=runs[0]["error"])
        else:
            n = len(ok)
            row.update(nfe=round(sum(r["nfe"] for r in ok) / n, 1),
                       weight_error=round(sum(r["weight_error"] for r in ok) / n, 4),
                       sliced_wasserstein=round(sum(r["sliced_wasserstein"] for r in ok) / n, 4),
                       seconds=round(sum(r["seconds"] for r in ok) / n, 4))
        rows.append(row)
        if progress is not None:
            progress(len(rows), total)

    def attempt(fn):
        try:
            return fn()
        except SamplerDiverged as err:
            return {"error": str(err)}

    for sampler in samplers:
        if sampler == "ode":
            for tol in tolerances:
                runs = [attempt(lambda s=s: run_sde_mix(_cfg(base, "ode", 1, s, tol)).summary())
                        for s in seeds]
                average("ode", f"tol {tol:g}", runs)
            continue
        for b in budgets:
            if sampler == "annealed":
                runs = [attempt(lambda s=s: _annealed(b, base, s)) for s in seeds]
            else:
                steps = b if sampler == "sde" else max(1, b // (1 + base.corrector_steps))
                runs = [attempt(lambda s=s: run_sde_mix(_cfg(base, sampler, steps, s)).summary())
                        for s in seeds]
            average(sampler, b, runs)
    return rows


def _cfg(base: SDEMixConfig, sampler: str, steps: int, seed: int, tol: float | None = None):
    from dataclasses import replace

    kw = dict(sampler=sampler, steps=steps, seed=seed)
    if tol is not None:
        kw.update(rtol=tol, atol=tol)
    return replace(base, **kw)


def add_arguments(p) -> None:
    p.add_argument("--sde", default="ve", choices=["ve", "vp", "subvp"],
                   help="the forward SDE: variance exploding, variance preserving or sub-VP")
    p.add_argument("--means", default="5,5;-5,-5", help="the mixture's component means")
    p.add_argument("--weights", default="0.8,0.2", help="the mixture's weights")
    p.add_argument("--particles", type=int, default=2000, help="particles per run")
    p.add_argument("--budgets", default="20,50,100,200,500", help="NFE budgets, comma-separated")
    p.add_argument("--seeds", type=int, default=2, help="seeds averaged per point")
    p.add_argument("--snr", type=float, default=0.16, help="the PC corrector's signal-to-noise ratio r")
    p.add_argument("--sigma-min", type=float, default=SDEMixConfig.sigma_min, help="VE: σ_min")
    p.add_argument("--sigma-max", type=float, default=SDEMixConfig.sigma_max, help="VE: σ_max")
    p.add_argument("--beta-min", type=float, default=SDEMixConfig.beta_min, help="VP / sub-VP: β_min")
    p.add_argument("--beta-max", type=float, default=SDEMixConfig.beta_max, help="VP / sub-VP: β_max")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--run-dir", default=None,
                   help="a job folder (the SDEs page's background job): progress and result.json "
                        "with the rows go there; a cancel stops it after the point in progress")


def run(args) -> int:
    from engine.targets import parse_numbers, parse_points

    from engine.store.jobs import LevelReporter, also_to
    from engine.store.runs import mark_failed

    try:
        base = SDEMixConfig(means=tuple(parse_points(args.means)),
                            weights=tuple(parse_numbers(args.weights, "weights")), sde=args.sde,
                            particles=args.particles, snr=args.snr, sigma_min=args.sigma_min,
                            sigma_max=args.sigma_max, beta_min=args.beta_min, beta_max=args.beta_max)
        base.validate()
    except ValueError as err:
        if args.run_dir:
            mark_failed(args.run_dir, str(err))
        raise
    budgets = tuple(int(b) for b in args.budgets.split(",") if b.strip())
    start = time.perf_counter()
    job = LevelReporter(args.run_dir, unit="point") if args.run_dir else None
    with reporter("bench sde", 0, unit="point") as bar, job or nullcontext():
        rows = nfe_sweep(base, budgets=budgets, seeds=tuple(range(args.seeds)),
                         progress=also_to(job, bar.callback()))
    if job is not None and job.stopped:
        return 0
    if job is not None:
        job.finished(f"{len(rows)} points measured.", rows=rows, sde=args.sde, seeds=args.seeds)
    if args.json:
        print(json.dumps({"sde": args.sde, "particles": args.particles, "seeds": args.seeds,
                          "rows": rows, "seconds": round(time.perf_counter() - start, 1)}))
        return 0
    print(f"SDE {args.sde}, {args.particles} particles, mean over {args.seeds} seeds, exact score")
    print(f"{'sampler':10s} {'budget':>10s} {'NFE':>7s} {'weight err':>11s} {'sliced W2':>10s} {'s':>7s}")
    for r in rows:
        if r["nfe"] is None:
            print(f"{r['sampler']:10s} {str(r['budget']):>10s}   diverged: {r['error']}")
            continue
        print(f"{r['sampler']:10s} {str(r['budget']):>10s} {r['nfe']:7.0f} {r['weight_error']:11.4f} "
              f"{r['sliced_wasserstein']:10.4f} {r['seconds']:7.2f}")
    return 0

