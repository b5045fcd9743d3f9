"""python -m engine nll: probability-flow ODE negative log-likelihood (nats per point), JSON.

    python -m engine nll --means '5,5;-5,-5' --weights 0.8,0.2 --exact-score --sde ve --points 200
    python -m engine nll --checkpoint checkpoints/sde2d_seeds_ve.json --points 200

Points are exact samples of the mixture (the checkpoint's training mixture when a checkpoint is
given). nll_ode integrates the ODE from t = eps to 1 with the exact trace (2D); nll_exact is the
closed-form −log p(x) of the clean mixture on the same points.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext

import torch

from engine.cli.main import number
from engine.progress import reporter
from engine.lab.sde_mixing import SDEMixConfig
from engine.samplers.reverse import SDESamplerConfig
from engine.training.flags import field_help


def add_arguments(p) -> None:
    p.add_argument("--means", default=None, help="component means, e.g. '5,5;-5,-5'")
    p.add_argument("--weights", default=None, help="mixture weights, e.g. 0.8,0.2")
    p.add_argument("--stds", default=None, help="one isotropic std per component")
    p.add_argument("--exact-score", action="store_true", help="use the exact marginal score")
    p.add_argument("--checkpoint", default=None, help="time-conditional 2D score model")
    p.add_argument("--sde", default="ve", choices=["ve", "vp", "subvp"], help=field_help(SDEMixConfig, "sde"))
    for name, default, words in (("sigma_min", 0.01, "VE: σ_min"), ("sigma_max", 100.0, "VE: σ_max"),
                                 ("beta_min", 0.1, "VP / sub-VP: β_min"), ("beta_max", 20.0, "VP / sub-VP: β_max")):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=default,
                       help=field_help(SDEMixConfig, name, f"{words} (with --exact-score)"))
    p.add_argument("--points", type=number(int, 1, 100_000), default=200,
                   help="exact samples of the mixture (allowed: [1, 100000])")
    p.add_argument("--seed", type=int, default=0,
                   help=field_help(SDEMixConfig, "seed", "seed of the points and of the trace probe"))
    p.add_argument("--hutchinson", action="store_true",
                   help="Hutchinson trace estimate (one Rademacher probe) instead of the exact trace")
    p.add_argument("--rtol", type=float, default=1e-5, help=field_help(SDESamplerConfig, "rtol"))
    p.add_argument("--atol", type=float, default=1e-5, help=field_help(SDESamplerConfig, "atol"))
    p.add_argument("--grid", type=number(int, 2, 200), default=None,
                   help="with --checkpoint: the ODE log-density on an N×N grid around the mixture next "
                        "to the exact one (the SDEs page's map) instead of the NLL of samples "
                        "(allowed: [2, 200])")
    p.add_argument("--run-dir", default=None,
                   help="with --grid: a job folder (the SDEs page's background job): progress, "
                        "result.json and grid/ode/exact.npy go there; a cancel stops it")


def run(args) -> int:
    from engine.sde.likelihood import ode_log_likelihood
    from engine.sde.sdes import exact_score_fn, make_sde
    from engine.targets import GaussianMixture, parse_numbers, parse_points

    if args.exact_score == bool(args.checkpoint):
        raise ValueError("Give exactly one of --exact-score (with --means/--weights) or --checkpoint PATH.")
    if args.grid is not None or args.run_dir:
        return density_map(args)
    # The SDE's parameters, the tolerances and the seed: checked where their ranges live.
    SDEMixConfig(sampler="ode", sde=args.sde, sigma_min=args.sigma_min, sigma_max=args.sigma_max,
                 beta_min=args.beta_min, beta_max=args.beta_max, rtol=args.rtol, atol=args.atol,
                 seed=args.seed).validate()
    if args.checkpoint:
        from engine.models.score import load_score

        loaded = load_score(args.checkpoint, reading="time")
        score_fn, sde = loaded.score_fn, loaded.sde
        mix_dict = (loaded.meta.get("data") or {}).get("mixture")
        if args.means:
            mixture = GaussianMixture.create(parse_points(args.means),
                                             parse_numbers(args.weights or "1", "weights"),
                                             parse_numbers(args.stds, "stds") if args.stds else None)
        elif mix_dict:
            mixture = GaussianMixture.from_dict(mix_dict)
        else:
            raise ValueError("This checkpoint does not record its mixture; give --means and --weights.")
        score_name = args.checkpoint
    else:
        if not args.means or not args.weights:
            raise ValueError("--exact-score needs --means and --weights.")
        stds = parse_numbers(args.stds, "standard deviations") if args.stds else None
        mixture = GaussianMixture.create(parse_points(args.means),
                                         parse_numbers(args.weights, "weights"), stds)
        sde = make_sde(args.sde, args.sigma_min, args.sigma_max, args.beta_min, args.beta_max)
        score_fn = exact_score_fn(mixture, sde)
        score_name = "exact"
    x = mixture.sample(args.points, generator=torch.Generator().manual_seed(args.seed),
                       dtype=torch.float64)
    start = time.perf_counter()
    with reporter("nll", 1.0, unit="ODE time") as bar:    # the share of [eps, T] integrated
        res = ode_log_likelihood(score_fn, x, sde, exact_trace=not args.hutchinson, rtol=args.rtol,
                                 atol=args.atol, seed=args.seed, progress=bar.update)
    seconds = time.perf_counter() - start
    out = {
        "nll_ode": round(float(-res.log_p.mean()), 5),
        "nll_exact": round(float(-mixture.log_prob(x).mean()), 5),
        "points": args.points,
        "sde": sde.describe(),
        "trace": res.method,
        "nfe": res.nfe,
        "score": score_name,
        "seconds": round(seconds, 3),
    }
    print(json.dumps(out))
    return 0


def density_map(args) -> int:
    """--grid N: engine.lab.sde_views.likelihood_view as JSON (and, with --run-dir, a job folder)."""
    from engine.lab.sde_views import likelihood_view
    from engine.store.jobs import LevelReporter, save_array
    from engine.store.runs import mark_failed

    if not args.checkpoint or args.grid is None:
        message = "--grid N needs --checkpoint PATH (and --run-dir needs --grid N)."
        if args.run_dir:
            mark_failed(args.run_dir, message)
        raise ValueError(message)
    job = LevelReporter(args.run_dir, unit="%") if args.run_dir else None
    with reporter("density map", 1.0, unit="ODE time") as bar, job or nullcontext():

        def report(fraction):                     # the share of [eps, T] integrated
            bar.update(fraction)
            if job is not None:
                job(round(100 * fraction, 1), 100)
        out = likelihood_view(args.checkpoint, args.grid, progress=report)
    if job is not None and job.stopped:
        return 0
    figures = {"nfe": int(out["nfe"]), "seconds": round(float(out["seconds"]), 3),
               "near_error": round(float(out["near_error"]), 5), "grid": args.grid,
               "checkpoint": str(args.checkpoint)}
    if job is not None:
        for name in ("grid", "ode", "exact"):
            save_array(job.dir / f"{name}.npy", out[name])
        job.finished(f"{args.grid}×{args.grid} density map done.", **figures)
    print(json.dumps(figures))
    return 0
