"""Langevin vs annealed: the seeds' experiment, plain and annealed Langevin dynamics with the exact
score, from the same initial particles, side by side."""

from __future__ import annotations

import math
from dataclasses import astuple, replace

import numpy as np
import streamlit as st
import torch

from engine.render import mixing as render
from engine.lab.mixing import MixConfig, run_mixes
from engine.samplers.schedules import ScheduleError
from engine.samplers.langevin import SamplerDiverged, small_tensor_threads
from engine.targets import GaussianMixture, TargetError

from ui import learned_score
from ui import nav

nav.ensure_app()  # a deep link opened before app.py ever ran: rerun inside app.py

N_FRAMES = 40          # animation frames after the initial one
ANIM_PARTICLES = 250   # particles shown in the animation
N_TRAJ = 4             # trajectories drawn on the final-particles figure
SHOW_PARTICLES = 1000  # final particles drawn per panel (all are used for the numbers)
STEP_SIZES = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
PARTICLES = [100, 250, 500, 1000, 2000, 4000]
COLORS = {"Plain Langevin": render.PLAIN, "Annealed Langevin": render.ANNEALED,
          "Target": render.TARGET}


def sample(configs: tuple[MixConfig, ...]) -> list[dict]:
    """The sampler runs as NumPy arrays, cached by the frozen configs (as plain tuples: hashing
    those is ~100x cheaper for st.cache_data than hashing the dataclasses)."""
    return _sample(tuple(astuple(c) for c in configs))


@st.cache_data(max_entries=48, show_spinner="Sampling both chains…")
def _sample(keys: tuple) -> list[dict]:
    """Both samplers run as one batched chain (same particles as separate runs, about half the
    time); an error becomes its one sentence."""
    out = []
    for r in run_mixes(tuple(MixConfig(*k) for k in keys)):
        if isinstance(r, (SamplerDiverged, ScheduleError, TargetError, ValueError)):
            out.append({"error": str(r)})
            continue
        frames = r.sample.frames.numpy() if r.sample.frames is not None else None
        out.append(dict(x=r.sample.x.numpy(), frames=frames, frame_steps=list(r.sample.frame_steps),
                        frame_levels=list(r.sample.frame_levels), weights=r.mode_weights,
                        target=r.target_weights, tv=r.weight_error, sw=r.sliced_wasserstein,
                        seconds=r.seconds, nfe=r.sample.nfe))
    return out


@st.cache_data(max_entries=16, show_spinner=False)
def contours(means: tuple, weights: tuple, lo: float, hi: float, n: int = 90) -> dict:
    g = np.linspace(lo, hi, n)
    xx, yy = np.meshgrid(g, g)
    pts = torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float64)
    with small_tensor_threads(pts.numel()):  # tiny tensors: one torch thread is fastest
        logp = GaussianMixture.create(means, weights).log_prob(pts).numpy().reshape(n, n)
    return dict(g=g, logp=np.maximum(logp, logp.max() - 30.0))


@st.cache_data(max_entries=48, show_spinner=False)
def figure_specs(keys: tuple, names: tuple, means: tuple, w: float, lim: float, steps: int,
                 sigma_max: float, sigma_min: float, levels: int) -> dict:
    """The two particle figures as Plotly dicts, cached like the samples they draw."""
    found = dict(zip(names, _sample(keys)))
    found = {name: out for name, out in found.items() if "error" not in out}
    grid = contours(means, (w, 1.0 - w), -lim, lim)
    panels = []
    for name, out in found.items():
        frames = out["frames"]
        # One point per noise level (every T steps, for both samplers): the path stays readable
        # even when the annealed particles roam far at the large σ levels.
        at_levels = [i for i, s in enumerate(out["frame_steps"]) if s % steps == 0]
        panels.append(dict(name=name, color=COLORS[name], points=out["x"][:SHOW_PARTICLES],
                           trajectories=frames[at_levels, :N_TRAJ] if frames is not None else None))
    specs = {"final": render.particles_figure(panels, grid["g"], grid["g"], grid["logp"], lo=-lim,
                                              hi=lim, means=means).spec, "anim": None}
    if len(found) == 2:
        plain, ann = found["Plain Langevin"], found["Annealed Langevin"]
        sigmas = np.geomspace(sigma_max, sigma_min, levels) if levels > 1 else np.array([sigma_min])
        labels = [f"step {s}" + (f" · annealed σ = {sigmas[lv]:.2g}" if s else " (start)")
                  for s, lv in zip(ann["frame_steps"], ann["frame_levels"])]
        k = min(len(plain["frames"]), len(ann["frames"]), len(labels))
        anim = [dict(name=nm, color=COLORS[nm], frames=found[nm]["frames"][:k]) for nm in found]
        specs["anim"] = render.animation_figure(anim, labels[:k], grid["g"], grid["g"], grid["logp"],
                                                lo=-lim, hi=lim, means=means).spec
    return specs


st.title("Langevin vs annealed Langevin")
st.markdown(
    "Both samplers use the **exact** score of the target and start from the **same** particles "
    "(uniform in $[-8, 8]^2$). Plain Langevin runs $L\\cdot T$ steps at one step size; annealed "
    "Langevin runs $T$ steps at each of $L$ noise levels $\\sigma_1 > \\dots > \\sigma_L$. Same "
    "number of score evaluations; the defaults are the seeds' experiment."
)

with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        st.markdown("**Target**")
        w = st.slider("Weight of the mode at (a, a)", 0.05, 0.95, 0.8, 0.05, key="lv_w",
                      help="The other mode, at (−a, −a), gets 1 − w.")
        a = st.slider("Mode position a", 1.0, 7.0, 5.0, 0.5, key="lv_a",
                      help="Means at (a, a) and (−a, −a), unit variance.")
    with c2:
        st.markdown("**Langevin**")
        eps = st.select_slider("Step size ε", STEP_SIZES, value=0.1, key="lv_eps",
                               help="Plain: α = ε. Annealed: α_i = ε·σ_i²/σ_L².")
        steps = st.slider("Steps per level T", 10, 300, 100, 10, key="lv_steps",
                          help="Plain Langevin runs L·T steps.")
    with c3:
        st.markdown("**Annealing**")
        sigma_max = st.slider("σ_max (σ_1)", 0.5, 40.0, 20.0, 0.5, key="lv_smax")
        sigma_min = st.slider("σ_min (σ_L)", 0.05, 5.0, 1.0, 0.05, key="lv_smin")
        levels = st.slider("Noise levels L", 1, 20, 10, 1, key="lv_levels")
    with c4:
        st.markdown("**Particles**")
        n = st.select_slider("Particles", PARTICLES, value=1000, key="lv_n")
        denoise = st.checkbox("Final denoising step", value=False, key="lv_denoise",
                              help="Annealed only: x ← x + σ_L²·s(x, σ_L) (Tweedie's formula) "
                                   "removes the σ_L noise left by annealing.")
        seed = int(st.session_state.get("seed", 0))
        st.caption(f"Seed {seed} (sidebar) · exact score on CPU")

means = ((a, a), (-a, -a))
total = levels * steps
# Record every `every` steps, a divisor of T so each level's end is a frame (≈ N_FRAMES frames).
per_level = max(1, math.ceil(N_FRAMES / levels))
every = next(d for d in range(max(1, math.ceil(steps / per_level)), steps + 1) if steps % d == 0)
base = MixConfig(means=means, weights=(w, 1.0 - w), particles=n, step_size=eps,
                 sigma_max=sigma_max, sigma_min=sigma_min, levels=levels, seed=seed,
                 denoise=denoise, record_every=every, record_particles=min(n, ANIM_PARTICLES))
# Plain Langevin ignores the σ schedule: keep those fields at their defaults in its config.
configs = {"Plain Langevin": replace(base, sampler="langevin", steps=total, denoise=False,
                                     sigma_max=MixConfig.sigma_max, sigma_min=MixConfig.sigma_min,
                                     levels=MixConfig.levels),
           "Annealed Langevin": replace(base, sampler="annealed", steps=steps)}
colors = COLORS

# Bad combinations (σ_max ≤ σ_min, a step size that blows up) come back as one sentence each.
results = {}
for name, out in zip(configs, sample(tuple(configs.values()))):
    if "error" in out:
        st.error(f"{name}: {out['error']}")
    else:
        results[name] = out
if not results:
    st.stop()

lim = max(10.0, a + 5.0)
grid = contours(means, (w, 1.0 - w), -lim, lim)
specs = figure_specs(tuple(astuple(c) for c in configs.values()), tuple(configs), means, w, lim,
                     steps, sigma_max, sigma_min, levels)
tab_final, tab_anim = st.tabs(["Final particles and trajectories", "Animation"])
with tab_final:
    st.plotly_chart(render.Spec(specs["final"]), key="lv_final", config={"displaylogo": False})
    st.caption(f"Grey: contours of the target's log-density; × marks the means. Black lines: "
               f"{N_TRAJ} particles' paths from their start (open circle), one point every {steps} "
               "steps (the end of each annealed noise level). At the large noise levels the "
               "annealed particles roam far beyond this window.")
with tab_anim:
    if specs["anim"] is not None:
        st.plotly_chart(render.Spec(specs["anim"]), key="lv_anim", config={"displaylogo": False})
        st.caption(f"Press ▶ Play: {min(n, ANIM_PARTICLES)} of the particles, every {every} steps. "
                   "The animation plays in your browser; no recomputation.")
    else:
        st.info("The animation needs both samplers; fix the error above.")

left, right = st.columns([3, 2])
with left:
    labels = [f"mode at ({a:g}, {a:g})", f"mode at ({-a:g}, {-a:g})"]
    bars = {"Target": [w, 1.0 - w]}
    bars.update({name: out["weights"] for name, out in results.items()})
    st.plotly_chart(render.weights_figure(labels, bars, colors=colors,
                                          title="Recovered vs target weights"),
                    key="lv_weights", config={"displaylogo": False})
with right:
    rows = ["| | " + " | ".join(labels) + " | weight error (TV) | sliced W₂ |",
            "|---|" + "---:|" * (len(labels) + 2),
            "| Target | " + " | ".join(f"{v:.3f}" for v in bars["Target"]) + " | 0 | 0 |"]
    for name, out in results.items():
        rows.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in out["weights"])
                    + f" | **{out['tv']:.3f}** | {out['sw']:.2f} |")
    st.markdown("**Recovered weights and errors**\n\n" + "\n".join(rows))
    st.caption("Weight error: total variation ½Σ|ŵ_k − w_k| between the share of particles "
               "nearest each mode and the target. Sliced W₂: distance between the particles and "
               "exact samples of the target (it also sees the spread, not only the weights). "
               + " · ".join(f"{name}: {out['nfe']} score evaluations" for name, out in results.items())
               + ("; both sampled together" if len(results) == 2 else "; sampled")
               + f" in {max(o['seconds'] for o in results.values()) * 1e3:.0f} ms.")

# A trained score (Train page) in place of the exact one, sampled with the same settings.
if "Annealed Langevin" in results:
    learned_score.learned_vs_exact(configs["Annealed Langevin"], results["Annealed Langevin"],
                                   grid=grid, lim=lim, means=means, name="Annealed Langevin",
                                   key="lv_learned")

st.subheader("What to look for, and why")
st.markdown("Plain Langevin dynamics follows the score with a little noise:")
st.latex(r"x_{t+1} = x_t + \frac{\varepsilon}{2}\,\nabla_x \log p(x_t) + \sqrt{\varepsilon}\,z_t,"
         r"\qquad z_t \sim \mathcal N(0, I).")
st.markdown(
    "Where one component dominates, $\\nabla_x \\log p(x) \\approx -(x-\\mu_k)$: **the weights do "
    "not appear**. Each particle slides into the mode whose basin it starts in and almost never "
    "crosses the empty region between the modes, so the **red** bars show the share of "
    "starting points on each side of the diagonal (about ½, ½), not the target "
    f"({w:.2f}, {1 - w:.2f}). Annealed Langevin starts at a noise level so large that the "
    "noisy components overlap:"
)
st.latex(r"p_{\sigma_i}(x) = \sum_k w_k\,\mathcal N\!\big(x;\mu_k,(1+\sigma_i^2)I\big),\qquad "
         r"\alpha_i = \varepsilon\,\frac{\sigma_i^2}{\sigma_L^2},")
st.markdown(
    "so at $\\sigma_1$ the score feels the weights everywhere and the particles split "
    "in the right proportions while they can still move between modes; each smaller $\\sigma_i$ "
    "then sharpens the picture. Things to try: set $\\sigma_{max}$ close to $\\sigma_{min}$ (no "
    "real annealing: the **blue** bars go wrong too); raise $\\varepsilon$ until a sampler "
    "diverges; move the modes closer ($a = 1.5$), where plain Langevin mixes on its own. With "
    "$\\sigma_L = 1$ the annealed particles are samples of $p_{\\sigma_L}$, a little wider than "
    "$p$; the denoising step $x + \\sigma_L^2 \\nabla \\log p_{\\sigma_L}(x)$ pulls them in."
)
