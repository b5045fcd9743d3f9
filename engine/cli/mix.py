"""python -m engine mix: one sampling experiment on a mixture, JSON on stdout."""

from __future__ import annotations

import json
import sys

from engine.lab.mixing import MixConfig, run_mix
from engine.samplers.langevin import SamplerDiverged
from engine.targets import parse_numbers, parse_points


def add_arguments(p) -> None:
    p.add_argument("--means", default=None,
                   help="component means, e.g. '5,5;-5,-5' (default: the checkpoint's mixture, "
                        "else the seeds' 5,5;-5,-5)")
    p.add_argument("--weights", default=None, help="mixture weights, e.g. 0.8,0.2 (default as --means)")
    p.add_argument("--stds", default=None, help="one isotropic std per component, e.g. 1,1")
    p.add_argument("--sampler", default="annealed", choices=["langevin", "annealed", "sde", "pc", "ode"],
                   help="langevin/annealed, or reverse-SDE Euler–Maruyama (sde), predictor–corrector "
                        "(pc), probability-flow ODE (ode)")
    p.add_argument("--particles", type=int, default=1000)
    p.add_argument("--steps", type=int, default=None,
                   help="total (langevin) or per level (annealed), default 100; "
                        "time steps N (sde, pc), default 500")
    p.add_argument("--step-size", type=float, default=0.1, help="ε in x + (α/2)s + √α z")
    p.add_argument("--sigma-max", type=float, default=None, help="default 20 (annealed), 100 (VE SDE)")
    p.add_argument("--sigma-min", type=float, default=None, help="default 1 (annealed), 0.01 (VE SDE)")
    p.add_argument("--levels", type=int, default=10)
    p.add_argument("--init", default="uniform:-8,8", help="uniform:LO,HI or gaussian:MEAN,STD")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--denoise", action="store_true", help="final step x + σ_L² s(x, σ_L)")
    p.add_argument("--checkpoint", default=None, help="learned score model instead of the exact score")
    p.add_argument("--sde", default="ve", choices=["ve", "vp", "subvp"],
                   help="forward SDE for --sampler sde/pc/ode (a checkpoint brings its own)")
    p.add_argument("--beta-min", type=float, default=0.1, help="VP / sub-VP β_min")
    p.add_argument("--beta-max", type=float, default=20.0, help="VP / sub-VP β_max")
    p.add_argument("--snr", type=float, default=0.16, help="PC corrector signal-to-noise ratio r")
    p.add_argument("--corrector-steps", type=int, default=1, help="PC corrector steps per time step")


SDE_SAMPLERS = ("sde", "pc", "ode")


def config_from_args(args) -> MixConfig:
    means = parse_points(args.means)
    weights = parse_numbers(args.weights, "weights")
    stds = parse_numbers(args.stds, "standard deviations") if args.stds else None
    return MixConfig(means=tuple(means), weights=tuple(weights), stds=tuple(stds) if stds else None,
                     sampler=args.sampler, particles=args.particles,
                     steps=100 if args.steps is None else args.steps, step_size=args.step_size,
                     sigma_max=20.0 if args.sigma_max is None else args.sigma_max,
                     sigma_min=1.0 if args.sigma_min is None else args.sigma_min,
                     levels=args.levels, init=args.init, seed=args.seed, denoise=args.denoise,
                     checkpoint=args.checkpoint)


def _fill_target(args) -> None:
    """Without --means/--weights, score against the mixture the checkpoint was trained on (when
    it says), else the seeds' 0.8 N((5,5), I) + 0.2 N((−5,−5), I)."""
    if args.means is not None and args.weights is not None:
        return
    target = None
    if args.checkpoint:
        from engine.store.checkpoints import read_meta
        meta = read_meta(args.checkpoint)
        target = meta.get("target") or (meta.get("data") or {}).get("mixture")
        if not isinstance(target, dict) or "means" not in target:
            target = None
    if target is not None and args.means is None and args.weights is None:
        args.means = ";".join(",".join(str(v) for v in m) for m in target["means"])
        args.weights = ",".join(str(w) for w in target["weights"])
        if args.stds is None and target.get("stds"):
            stds = target["stds"]
            if all(isinstance(s, (int, float)) or len(set(s)) == 1 for s in stds):  # isotropic
                args.stds = ",".join(str(s if isinstance(s, (int, float)) else s[0]) for s in stds)
    if args.means is None:
        args.means = "5,5;-5,-5"
    if args.weights is None:
        args.weights = "0.8,0.2"


def run(args) -> int:
    _fill_target(args)
    if args.sampler in SDE_SAMPLERS:
        from engine.lab.sde_mixing import run_sde_cli
        return run_sde_cli(args)
    config = config_from_args(args)
    score_fn = None
    if config.checkpoint:
        from engine.store.checkpoints import load_score_fn  # added with learned scores
        score_fn = load_score_fn(config.checkpoint)
    try:
        result = run_mix(config, score_fn=score_fn)
    except SamplerDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    print(json.dumps(result.summary()))
    return 0
