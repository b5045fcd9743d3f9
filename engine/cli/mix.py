"""python -m engine mix: one sampling experiment on a mixture, JSON on stdout."""

from __future__ import annotations

import argparse
import json

from engine.lab.mixing import LANGEVIN_SAMPLERS, MixConfig, run_mix
from engine.lab.sde_mixing import SDEMixConfig, run_sde_mix
from engine.models.score import load_score
from engine.samplers.reverse import SDE_SAMPLERS, SDESamplerConfig
from engine.targets import parse_numbers, parse_points
from engine.training.flags import check_fields, field_help


def add_arguments(p) -> None:
    p.add_argument("--means", default=None,
                   help="component means, e.g. '5,5;-5,-5' (default: the checkpoint's mixture, "
                        "else the seeds' 5,5;-5,-5)")
    p.add_argument("--weights", default=None, help="mixture weights, e.g. 0.8,0.2 (default as --means)")
    p.add_argument("--stds", default=None, help="one isotropic std per component, e.g. 1,1")
    p.add_argument("--sampler", default="annealed", choices=[*LANGEVIN_SAMPLERS, *SDE_SAMPLERS],
                   help="langevin/annealed, or reverse-SDE Euler–Maruyama (sde), predictor–corrector "
                        "(pc), probability-flow ODE (ode)")
    p.add_argument("--particles", type=int, default=1000, help=field_help(MixConfig, "particles"))
    p.add_argument("--steps", type=int, default=None,
                   help=field_help(MixConfig, "steps", "total (langevin) or per level (annealed), "
                                   "default 100; time steps N (sde, pc), default 500"))
    p.add_argument("--step-size", type=float, default=0.1,
                   help=field_help(MixConfig, "step_size", "ε in x + (α/2)s + √α z"))
    p.add_argument("--sigma-max", type=float, default=None,
                   help=field_help(MixConfig, "sigma_max", "default 20 (annealed), 100 (VE SDE)"))
    p.add_argument("--sigma-min", type=float, default=None,
                   help=field_help(MixConfig, "sigma_min", "default 1 (annealed), 0.01 (VE SDE)"))
    p.add_argument("--levels", type=int, default=10, help=field_help(MixConfig, "levels"))
    p.add_argument("--init", default="uniform:-8,8", help="uniform:LO,HI or gaussian:MEAN,STD")
    p.add_argument("--seed", type=int, default=0, help=field_help(MixConfig, "seed"))
    p.add_argument("--denoise", action="store_true", help="final step x + σ_L² s(x, σ_L)")
    p.add_argument("--checkpoint", default=None, help="learned score model instead of the exact score")
    p.add_argument("--sde", default="ve", choices=["ve", "vp", "subvp"],
                   help="forward SDE for --sampler sde/pc/ode (a checkpoint brings its own)")
    p.add_argument("--beta-min", type=float, default=0.1, help=field_help(SDEMixConfig, "beta_min", "VP / sub-VP β_min"))
    p.add_argument("--beta-max", type=float, default=20.0, help=field_help(SDEMixConfig, "beta_max", "VP / sub-VP β_max"))
    p.add_argument("--snr", type=float, default=0.16,
                   help=field_help(SDESamplerConfig, "snr", "PC corrector signal-to-noise ratio r"))
    p.add_argument("--corrector-steps", type=int, default=1,
                   help=field_help(SDESamplerConfig, "corrector_steps", "PC corrector steps per time step"))


def _target(args) -> dict:
    stds = parse_numbers(args.stds, "standard deviations") if args.stds else None
    return dict(means=tuple(parse_points(args.means)),
                weights=tuple(parse_numbers(args.weights, "weights")),
                stds=tuple(stds) if stds else None)


def config_from_args(args) -> MixConfig:
    """MixConfig from the Langevin flags (--sampler langevin | annealed)."""
    return MixConfig(**_target(args), sampler=args.sampler, particles=args.particles,
                     steps=100 if args.steps is None else args.steps, step_size=args.step_size,
                     sigma_max=20.0 if args.sigma_max is None else args.sigma_max,
                     sigma_min=1.0 if args.sigma_min is None else args.sigma_min,
                     levels=args.levels, init=args.init, seed=args.seed, denoise=args.denoise,
                     checkpoint=args.checkpoint)


def sde_config_from_args(args) -> SDEMixConfig:
    """SDEMixConfig from the SDE flags (--sampler sde | pc | ode)."""
    return SDEMixConfig(**_target(args), sampler=args.sampler, sde=args.sde,
                        sigma_min=0.01 if args.sigma_min is None else args.sigma_min,
                        sigma_max=100.0 if args.sigma_max is None else args.sigma_max,
                        beta_min=args.beta_min, beta_max=args.beta_max, particles=args.particles,
                        steps=500 if args.steps is None else args.steps, snr=args.snr,
                        corrector_steps=args.corrector_steps, seed=args.seed,
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


def check_every_flag(args) -> None:
    """Each flag's range is checked even where the chosen sampler ignores it (--beta-min with
    --sampler annealed): a value outside its stated range is never silently accepted."""
    check_fields(config_from_args(argparse.Namespace(**{**vars(args), "sampler": "annealed"})))
    sde = sde_config_from_args(argparse.Namespace(**{**vars(args), "sampler": "pc"}))
    check_fields(sde)
    check_fields(sde.sampler_config())


def run(args) -> int:
    _fill_target(args)
    check_every_flag(args)
    if args.sampler in SDE_SAMPLERS:   # a diverging sampler raises SamplerDiverged (engine.cli.main)
        config = sde_config_from_args(args)
        config.validate()
        score_fn = sde = None
        if config.checkpoint:
            loaded = load_score(config.checkpoint, reading="time")
            score_fn, sde = loaded.score_fn, loaded.sde
        result = run_sde_mix(config, score_fn=score_fn, sde=sde)
    else:
        config = config_from_args(args)
        config.validate()
        score_fn = load_score(config.checkpoint).score_fn if config.checkpoint else None
        result = run_mix(config, score_fn=score_fn)
    print(json.dumps(result.summary()))
    return 0
