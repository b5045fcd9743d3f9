"""Langevin vs annealed: the seeds' experiment, plain and annealed Langevin dynamics with the exact
score, from the same initial particles, side by side."""

from __future__ import annotations

from dataclasses import astuple

import streamlit as st

from engine.lab.comparison import ANNEALED, PLAIN, frame_every, plain_and_annealed, sample_exact
from engine.lab.grids import density_grid
from engine.lab.mixing import MixConfig
from engine.render import base, export
from engine.render import mixing as render

from ui import learned_score, url_state


N_FRAMES = 40          # animation frames after the initial one
ANIM_PARTICLES = 200   # particles shown in the animation
N_TRAJ = 4             # trajectories drawn on the final-particles figure
DENSITY_N = 60         # density grid per side for the contour lines (smooth: 60² is plenty)
SHOW_PARTICLES = 300   # final particles drawn per panel (all are used for the numbers); SVG: DOM nodes
STEP_SIZES = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
# The fused exact-score kernel samples 2 × 2000 particles × 1000 steps in ~40 ms: the default
# weights are read from 2000 particles (±1 % noise instead of ±1.3 % at 1000).
PARTICLES = [100, 250, 500, 1000, 2000, 5000, 10000, 20000]
COLORS = {PLAIN: base.PLAIN, ANNEALED: base.ANNEALED, "Target": base.TARGET}


def sample(configs: tuple[MixConfig, ...]) -> list[dict]:
    """The sampler runs as NumPy arrays, cached per config (as a plain tuple: hashing that is
    ~100x cheaper for st.cache_data than hashing the dataclass), so a σ slider, which changes
    only the annealed config, reruns only the annealed chain."""
    return [_sample(astuple(c)) for c in configs]


@st.cache_data(max_entries=96, show_spinner="Sampling…")
def _sample(key: tuple) -> dict:
    """One sampler with the fused exact-score kernel; an error becomes its one sentence."""
    return sample_exact((MixConfig(*key),))[0]


contours = st.cache_data(max_entries=16, show_spinner=False)(density_grid)


@st.cache_data(max_entries=8, show_spinner=False)
def gif_bytes(keys: tuple, names: tuple, means: tuple, lim: float) -> bytes:
    """Both samplers' recorded frames as an animated GIF, built on the first download only."""
    found = {name: out for name, out in zip(names, map(_sample, keys)) if "error" not in out}
    return export.langevin_gif(found, COLORS, lim=lim, means=means, label_by=ANNEALED)


@st.cache_data(max_entries=48, show_spinner=False)
def figure_specs(keys: tuple, names: tuple, means: tuple, w: float, lim: float, steps: int,
                 animate: bool) -> dict:
    """The particle figures as Plotly dicts, cached like the samples they draw; the animation
    (all its frames) only when asked for."""
    found = {name: out for name, out in zip(names, map(_sample, keys)) if "error" not in out}
    return render.langevin_figures(found, contours(means, (w, 1.0 - w), -lim, lim, DENSITY_N), lim=lim,
                                   means=means, steps=steps, colors=COLORS, label_by=ANNEALED,
                                   n_traj=N_TRAJ, shown=SHOW_PARTICLES, animate=animate,
                                   weights=weight_bars(found, means, w))


def weight_bars(results: dict, means, w: float) -> dict:
    """The recovered vs target weights, drawn as bars beside the final particles (one chart to
    repaint per slider move instead of two)."""
    bars = {"Target": [w, 1.0 - w]}
    bars.update({name: out["mode_weights"] for name, out in results.items()})
    labels = [f"({m[0]:g}, {m[1]:g})" for m in means]
    return dict(labels=labels, bars=bars, colors=COLORS, title="Weights per mode")


st.title("Langevin vs annealed Langevin")
st.markdown(
    "Both samplers use the **exact** score of the target and start from the **same** particles "
    "(uniform in $[-8, 8]^2$). Plain Langevin runs $L\\cdot T$ steps at one step size; annealed "
    "Langevin runs $T$ steps at each of $L$ noise levels $\\sigma_1 > \\dots > \\sigma_L$. Same "
    "number of score evaluations; the defaults are the seeds' experiment."
)


@st.fragment
def lab() -> None:
    """Controls and everything they change: a slider reruns only this (st.fragment)."""
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns(4)
        with c1:
            st.markdown("**Target**")
            w = url_state.slider("Weight of the mode at (a, a)", 0.05, 0.95, 0.8, 0.05, key="lv_w",
                                 help="The other mode, at (−a, −a), gets 1 − w.")
            a = url_state.slider("Mode position a", 1.0, 7.0, 5.0, 0.5, key="lv_a",
                                 help="Means at (a, a) and (−a, −a), unit variance.")
        with c2:
            st.markdown("**Langevin**")
            eps = url_state.select_slider("Step size ε", STEP_SIZES, 0.1, key="lv_eps",
                                          help="Plain: α = ε. Annealed: α_i = ε·σ_i²/σ_L².")
            steps = url_state.slider("Steps per level T", 10, 300, 100, 10, key="lv_steps",
                                     help="Plain Langevin runs L·T steps.")
        with c3:
            st.markdown("**Annealing**")
            sigma_max = url_state.slider("σ_max (σ_1)", 0.5, 40.0, 20.0, 0.5, key="lv_smax")
            sigma_min = url_state.slider("σ_min (σ_L)", 0.05, 5.0, 1.0, 0.05, key="lv_smin")
            levels = url_state.slider("Noise levels L", 1, 20, 10, 1, key="lv_levels")
        with c4:
            st.markdown("**Particles**")
            n = url_state.select_slider("Particles", PARTICLES, 2000, key="lv_n")
            denoise = url_state.checkbox("Final denoising step", False, key="lv_denoise",
                                         help="Annealed only: x ← x + σ_L²·s(x, σ_L) (Tweedie's "
                                              "formula) removes the σ_L noise left by annealing.")
            seed = int(st.session_state.get("seed", 0))
            st.caption(f"Seed {seed} (sidebar) · exact score on CPU")
            url_state.copy_link()

    means = ((a, a), (-a, -a))
    every = frame_every(steps, levels, N_FRAMES)
    configs = plain_and_annealed(MixConfig(
        means=means, weights=(w, 1.0 - w), particles=n, steps=steps, step_size=eps,
        sigma_max=sigma_max, sigma_min=sigma_min, levels=levels, seed=seed, denoise=denoise,
        record_every=every, record_particles=min(n, ANIM_PARTICLES)))

    # Bad combinations (σ_max ≤ σ_min, a step size that blows up) come back as one sentence each.
    results = {}
    for name, out in zip(configs, sample(tuple(configs.values()))):
        if "error" in out:
            st.error(f"{name}: {out['error']}")
        else:
            results[name] = out
    if not results:
        return

    lim = max(10.0, a + 5.0)
    keys = tuple(astuple(c) for c in configs.values())
    specs = figure_specs(keys, tuple(configs), means, w, lim, steps, False)
    st.plotly_chart(base.Spec(specs["final"]), key="lv_final", config=export.CHART_CONFIG)
    st.caption(f"Right: the share of the {n} particles nearest each mode, per sampler, beside the "
               "target weights. Grey: contours of the target's log-density; × marks the means. Black lines: "
               f"{N_TRAJ} particles' paths from their start (open circle), one point every {steps} "
               "steps (the end of each annealed noise level), clipped to this window: at the large "
               f"noise levels the annealed particles roam far beyond it. {min(n, SHOW_PARTICLES)} "
               f"of the {n} particles per panel are drawn.")
    st.download_button("Download the trajectories (GIF)",
                       lambda: gif_bytes(keys, tuple(configs), means, lim), file_name="langevin.gif", mime=export.GIF_MIME, on_click="ignore", key="lv_gif",
                       help=f"{min(n, ANIM_PARTICLES)} particles of each sampler, every {every} steps; "
                            "drawn when you click. Every chart saves as a PNG (2×) from its camera icon.")
    if url_state.checkbox("Animate the particles", False, key="lv_anim", toggle=True,
                          help="Builds both samplers' frames (once per setting) and plays them "
                               "in your browser."):
        anim = figure_specs(keys, tuple(configs), means, w, lim, steps, True)["anim"]
        if anim is not None:
            st.plotly_chart(base.Spec(anim), key="lv_anim_fig", config=export.CHART_CONFIG)
            st.caption(f"Press ▶ Play: {min(n, ANIM_PARTICLES)} of the particles, every {every} "
                       "steps. The animation plays in your browser; no recomputation.")
        else:
            st.info("The animation needs both samplers; fix the error above.")

    labels = [f"mode at ({a:g}, {a:g})", f"mode at ({-a:g}, {-a:g})"]
    bars = {"Target": [w, 1.0 - w]}
    bars.update({name: out["mode_weights"] for name, out in results.items()})
    st.markdown("**Recovered weights and errors**\n\n"
                + render.weights_table(bars["Target"], results, labels=labels, target_name="Target"))
    st.caption("Weight error: total variation ½Σ|ŵ_k − w_k| between the share of particles "
               "nearest each mode and the target. Sliced W₂: distance between the particles and "
               "exact samples of the target (it also sees the spread, not only the weights). "
               + " · ".join(f"{name}: {out['nfe']} score evaluations" for name, out in results.items())
               + f"; sampled in {sum(o['seconds'] for o in results.values()) * 1e3:.0f} ms.")

    # A trained score (Train page) in place of the exact one, sampled with the same settings.
    if ANNEALED in results:
        learned_score.learned_vs_exact(configs[ANNEALED], results[ANNEALED],
                                       grid=contours(means, (w, 1.0 - w), -lim, lim, DENSITY_N), lim=lim,
                                       means=means, name=ANNEALED, key="lv_learned")


lab()
st.subheader("What to look for, and why")
st.markdown("Plain Langevin dynamics follows the score with a little noise:")
st.latex(r"x_{t+1} = x_t + \frac{\varepsilon}{2}\,\nabla_x \log p(x_t) + \sqrt{\varepsilon}\,z_t,"
         r"\qquad z_t \sim \mathcal N(0, I).")
st.markdown(
    "Where one component dominates, $\\nabla_x \\log p(x) \\approx -(x-\\mu_k)$: **the weights do "
    "not appear**. Each particle slides into the mode whose basin it starts in and almost never "
    "crosses the empty region between the modes, so the **red** bars (right of the particles) show the share of "
    "starting points on each side of the diagonal (about ½, ½), not the target weights "
    "(w, 1 − w). Annealed Langevin starts at a noise level so large that the "
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
