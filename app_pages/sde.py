"""SDEs: the continuous picture. Forward SDE to the prior, reverse SDE vs probability-flow ODE,
quality against cost, ODE likelihoods, and inpainting MNIST digits with predictor–corrector."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import streamlit as st

from engine.lab.sde_mixing import SDEMixConfig
from engine.lab.sde_views import (classify, forward_view, masked_digit, paths_until,
                                  projected_view, reverse_view, reverse_window)
from engine.models.score import load_score
from engine.mnist.sde_tasks import INPAINT_JUMP, INPAINT_RESAMPLE, INPAINT_STEPS, MASKS
from engine.samplers.reverse import repaint_path
from engine.render import export
from engine.render import sde as render_sde
from engine.render.images import grid_png, npy_bytes, slide_grid_png
from engine.render.mixing import weights_table
from engine.sde.sdes import SDEError
from engine.store.jobs import read_array
from engine.store.registry import sde2d_models, sde_mnist_measurements, sde_mnist_models
from engine.store.runs import read_json
from engine.targets import TargetError
from engine.training.flags import FORMAT

from ui import url_state
from ui.jobs import COMPUTED, ended_sentence, follow_jobs, job_infos, start_job, supersede


N_TRAJ = 12
PLOT = export.CHART_CONFIG      # the camera icon saves a PNG at 2×

SNR_HELP = (
    "The corrector's signal-to-noise ratio r. Each corrector step is a Langevin step "
    "x ← x + ε·s + √(2ε)·z with ε = 2α(r‖z‖/‖s‖)², so the drift ε‖s‖ is r·√α times the noise "
    "√(2ε)‖z‖. Larger r: bigger, smoother corrector moves (too large adds noise that "
    "never gets removed); smaller r: tiny corrections (the PC sampler becomes the plain reverse SDE). "
    "Useful range 0.05–0.2; score_sde uses 0.16 on CIFAR-10 and the MNIST tutorial 0.16.")


# -- cached computations (engine.lab.sde_views, as arrays) ------------------------------------------

forward_view = st.cache_data(max_entries=32, show_spinner=False)(forward_view)
projected_view = st.cache_data(max_entries=32, show_spinner=False)(projected_view)
reverse_view = st.cache_data(max_entries=48, show_spinner=False)(reverse_view)
reverse_window = st.cache_data(max_entries=32, show_spinner=False)(reverse_window)


@st.cache_data(max_entries=4, show_spinner=False)
def reverse_gif(base: SDEMixConfig, samplers: tuple, labels: tuple, colors: tuple) -> bytes:
    """The reverse runs again with 300 recorded particles, as an animated GIF (on download only)."""
    runs = {label: reverse_view(replace(base, sampler=k, record_particles=300))
            for k, label in zip(samplers, labels)}
    window = reverse_window(base)
    return export.reverse_gif(runs, dict(zip(labels, colors)), lim=window["lim"], means=base.means,
                              t_from=window["t_cut"])


def sweep_argv(base: SDEMixConfig, budgets, seeds: int) -> list[str]:
    """`python -m engine bench sde …` for the comparison (engine.bench.sde.nfe_sweep, as a job)."""
    return ["bench", "sde", "--sde", base.sde, f"--means={FORMAT['points'](base.means)}",
            f"--weights={FORMAT['numbers'](base.weights)}", "--particles", str(base.particles),
            "--snr", repr(base.snr), "--sigma-min", repr(base.sigma_min), "--sigma-max",
            repr(base.sigma_max), "--beta-min", repr(base.beta_min), "--beta-max", repr(base.beta_max),
            "--budgets", ",".join(str(b) for b in budgets), "--seeds", str(seeds)]


@st.cache_resource(max_entries=4, show_spinner=False)
def load_mnist_model(path: str):
    loaded = load_score(path, reading="time")
    return loaded.score_fn, loaded.sde, loaded.meta


BPD_REFERENCES = ("For reading the number: a uniform model over the 256 pixel values scores "
                  "exactly 8 bits/dim; published score-based models reach about 1–2 on MNIST. "
                  "Lower is better.")


def density_maps(run_dir: str) -> dict:
    """A finished density-map job's arrays and figures (likelihood_view's), or {"error": one
    sentence} for a job that ended otherwise or whose files are damaged."""
    info = job_infos({"": run_dir})[""]
    if info.state != "finished":
        return {"error": ended_sentence(info, "The density map")}
    maps = {name: read_array(Path(run_dir) / f"{name}.npy") for name in ("grid", "ode", "exact")}
    r = read_json(Path(run_dir) / "result.json", None)
    try:
        figures = {"nfe": int(r["nfe"]), "seconds": float(r["seconds"]),
                   "near_error": float(r["near_error"])}
        n = len(maps["grid"])
        ok = maps["ode"].shape == maps["exact"].shape == (n, n)
    except (KeyError, TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        return {"error": "The density map's files cannot be read; press the button again."}
    return {**maps, **figures}


def inpaint_result(run_dir: str) -> dict:
    """A finished inpainting job's completions (index, mask, nfe, seconds, .npy bytes), or
    {"error": one sentence} for a job that ended otherwise or whose files are damaged."""
    info = job_infos({"": run_dir})[""]
    return _inpaint_result(run_dir, info.state, repr(info.status.get("updated")))


@st.cache_data(max_entries=8, show_spinner=False)
def _inpaint_result(run_dir: str, state: str, stamp: str) -> dict:
    info = job_infos({"": run_dir})[""]
    if info.state != "finished":
        return {"error": ended_sentence(info, "Inpainting")}
    comp = read_array(Path(run_dir) / "completions.npy", ndim=3)
    r = read_json(Path(run_dir) / "result.json", None)
    try:
        key, nfe, seconds = (int(r["index"]), str(r["mask"])), int(r["nfe"]), float(r["seconds"])
    except (KeyError, TypeError, ValueError):
        comp = None
    if comp is None:
        return {"error": "The inpainting job's files cannot be read; press Inpaint again."}
    return {"comp": comp, "key": key, "nfe": nfe, "seconds": seconds, "npy": npy_bytes(comp)}


@st.cache_data(max_entries=8, show_spinner=False)
def inpaint_png(run_dir: str, index: int, mask: str, seed: int) -> bytes:
    """Original, masked and completions in one row, at slide size."""
    digit = masked_digit(index, mask, seed)
    return slide_grid_png([digit["original"], digit["masked"], *inpaint_result(run_dir)["comp"]],
                          nrow=2 + len(inpaint_result(run_dir)["comp"]))


# -- page -----------------------------------------------------------------------------------------

st.title("SDEs: infinitely many noise levels")
st.markdown(
    "A forward SDE $dx = f(x,t)\\,dt + g(t)\\,dw$ carries the data to a simple prior as $t$ runs "
    "from 0 to 1. Running it backwards, $dx = [f - g^2\\nabla_x\\log p_t(x)]\\,dt + g\\,d\\bar w$, "
    "generates data; the **probability-flow ODE** $dx/dt = f - \\tfrac12 g^2 \\nabla_x\\log p_t(x)$ "
    "has the same marginals $p_t$ with no noise at all, and gives exact log-likelihoods. For a "
    "Gaussian mixture every $p_t$ is again a mixture, so the score is **exact** here: what you see "
    "is the samplers, not a network's errors.")

with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        st.markdown("**Target**")
        w = url_state.slider("Weight of the mode at (a, a)", 0.05, 0.95, 0.8, 0.05, key="sde_w")
        a = url_state.slider("Mode position a", 1.0, 7.0, 5.0, 0.5, key="sde_a")
    with c2:
        st.markdown("**Forward SDE**")
        kind = url_state.radio("SDE", ["ve", "vp", "subvp"], "ve", horizontal=True, key="sde_kind",
                               format_func={"ve": "VE", "vp": "VP", "subvp": "sub-VP"}.get,
                               help="VE: noise is added, nothing shrinks (σ(t) = σ_min(σ_max/σ_min)^t). "
                             "VP: the data shrinks by m(t) while noise grows, variance stays ~1. "
                             "sub-VP: VP's drift with less noise (std = 1 − m(t)²).")
        if kind == "ve":
            sigma_max = url_state.slider("σ_max", 5.0, 200.0, 100.0, 5.0, key="sde_smax",
                                  help="Must dwarf the data: p_1 has to look like N(0, σ_max² I). "
                                       "The rule of thumb is the largest pairwise distance (here "
                                       f"about {2 * a * 2 ** 0.5:.0f}); but these modes are not "
                                       "centred (mean c = (2w−1)(a, a)), and p_1 is N(c, …), not "
                                       "N(0, …): the weights come out biased by about "
                                       "0.3·|c|/σ_max — 0.06 at σ_max = 20, 0.012 at 100. Try it.")
            sigma_min = url_state.select_slider("σ_min", [0.001, 0.01, 0.05, 0.1], 0.01, key="sde_smin")
            beta_min, beta_max = 0.1, 20.0
        else:
            beta_min = url_state.select_slider("β_min", [0.01, 0.05, 0.1, 0.5, 1.0], 0.1, key="sde_bmin")
            beta_max = url_state.slider("β_max", 1.0, 40.0, 20.0, 1.0, key="sde_bmax",
                                 help="Too small and x(1) still remembers the data: the prior "
                                      "N(0, I) is then the wrong starting point.")
            sigma_min, sigma_max = 0.01, 100.0
    with c3:
        st.markdown("**Reverse samplers**")
        stoch = url_state.radio("Stochastic sampler", ["sde", "pc"], "sde", horizontal=True, key="sde_stoch",
                                format_func={"sde": "reverse SDE", "pc": "predictor–corrector"}.get)
        steps = url_state.select_slider("Time steps N", [20, 50, 100, 200, 500, 1000], 200,
                                 key="sde_steps", help="Euler–Maruyama steps from t = 1 to ε. "
                                 "PC uses one corrector step per time step: 2N score evaluations.")
        snr = url_state.select_slider("snr r (PC corrector)", [0.01, 0.05, 0.1, 0.16, 0.2, 0.3, 0.5, 1.0],
                                      0.16, key="sde_snr", help=SNR_HELP)
    with c4:
        st.markdown("**Particles**")
        n = url_state.select_slider("Particles", [200, 500, 1000, 2000], 1000, key="sde_n")
        seed = int(st.session_state.get("seed", 0))
        st.caption(f"Seed {seed} (sidebar) · exact score · the ODE uses scipy's RK45, "
                   "rtol = atol = 1e-5")
        url_state.copy_link()

base = SDEMixConfig(means=((a, a), (-a, -a)), weights=(w, 1 - w), sde=kind, sigma_min=sigma_min,
                    sigma_max=sigma_max, beta_min=beta_min, beta_max=beta_max, particles=n,
                    steps=steps, snr=snr, seed=seed, record_every=max(1, steps // 50),
                    record_particles=N_TRAJ)
try:
    base.validate()
except (SDEError, TargetError, ValueError) as err:
    st.error(str(err))
    st.stop()

with st.expander("What is snr (the signal-to-noise ratio r)?"):
    st.markdown(
        "The predictor–corrector sampler alternates a **predictor** (one reverse-SDE step "
        "$t \\to t - \\Delta t$) with a **corrector**: Langevin steps at the *same* $t$ that pull "
        "the particles back onto $p_t$ and fix the predictor's discretisation error. A Langevin "
        "step needs a step size; score_sde picks it per step from $r$:")
    st.latex(r"\varepsilon = 2\alpha\Big(\frac{r\,\|z\|}{\|s_\theta(x,t)\|}\Big)^2,\qquad "
             r"x \leftarrow x + \varepsilon\, s_\theta(x,t) + \sqrt{2\varepsilon}\,z")
    st.markdown(
        "($\\alpha = 1$ for VE, $1-\\beta_i$ for VP; norms are per sample, averaged over the "
        "batch; in the seeds' form $x + \\tfrac{a}{2}s + \\sqrt a\\,z$ this is $a = 2\\varepsilon$). "
        "So $r$ is the ratio of the *drift* $\\varepsilon\\|s\\|$ to the *noise* $\\sqrt{2\\varepsilon}\\|z\\|$ "
        "up to a factor: $\\varepsilon\\|s\\| / (\\sqrt{2\\varepsilon}\\|z\\|) = r\\sqrt{\\alpha}$. "
        "**Small $r$** (0.01): tiny corrector moves — PC behaves like the plain reverse SDE, at "
        "twice the cost. **$r$ ≈ 0.1–0.2**: the useful range (0.16 is the published default). "
        "**Large $r$** (0.5–1): big Langevin jumps at every $t$; the particles get noisier than "
        "$p_t$ and the modes blur. Try it: the weight error and sliced distance below react.")

tab_fwd, tab_rev, tab_cost, tab_lik, tab_mnist = st.tabs(
    ["Forward SDE", "Reverse: SDE vs ODE", "Quality vs cost", "Likelihood", "MNIST: bits/dim & inpainting"])

with tab_fwd:
    fv = forward_view(base)
    if "error" in fv:
        st.error(fv["error"])
    else:
        st.plotly_chart(render_sde.snapshots_figure(fv["panels"], lo=-a - 4, hi=a + 4), key="sde_snap",
                        config=PLOT)
        st.caption("Blue: the closed-form marginal log p_t (12 nats of range); purple: particles "
                   "simulated with Euler–Maruyama from exact data samples. Each panel zooms out "
                   "with the noise.")
        pj = projected_view(base)  # zoomed on the data: VE paths enter from far outside
        st.plotly_chart(render_sde.projected_figure(
            pj["ts"], pj["us"], pj["logp"],
            [dict(name="forward paths", color=render_sde.FWD_COLOR, t=fv["times"], u=fv["u"])],
            title="Marginal density of (x₁ + x₂)/√2 over t, with 30 forward paths"),
            key="sde_proj_fwd", config=PLOT)
        if kind == "ve":
            st.caption(f"VE: the modes never move; noise of std σ(t) swamps them. The prior is "
                       f"N(0, {sigma_max:g}² I) — but p_1 is centred at the data mean "
                       f"({(2 * w - 1) * a:.1f}, {(2 * w - 1) * a:.1f}), so a small σ_max leaves "
                       "a prior mismatch the reverse process inherits.")
        else:
            st.caption("VP / sub-VP: the data shrinks by m(t) = exp(−¼t²(β_max−β_min) − ½tβ_min) "
                       "towards 0 while noise fills in; the prior is N(0, I).")

with tab_rev:
    res = {name: reverse_view(replace(base, sampler=name)) for name in (stoch, "ode")}
    errs = [f"{name}: {r['error']}" for name, r in res.items() if "error" in r]
    for e in errs:
        st.error(e)
    if not errs:
        st.markdown("The **same** prior points (same seed) go through the stochastic sampler on the "
                    "left and the deterministic probability-flow ODE on the right.")
        window = reverse_window(base)
        lim, t_cut = window["lim"], window["t_cut"]
        names = {"sde": "reverse SDE", "pc": f"predictor–corrector (r = {snr:g})", "ode": "probability-flow ODE"}
        colors = {"sde": render_sde.SDE_COLOR, "pc": render_sde.SAMPLER_COLORS["pc"], "ode": render_sde.ODE_COLOR}
        # Draw the 2D paths only once the noise fits the window (VE starts at ±3σ_max);
        # the (t, u) view below shows them whole.
        panels = [dict(name=names[k], color=colors[k], points=r["x"], trajectories=paths_until(r, t_cut))
                  for k, r in res.items()]
        st.plotly_chart(render_sde.reverse_panels_figure(panels, window["g"], window["g"], window["logp"],
                                                         lo=-lim, hi=lim, means=base.means),
                        key="sde_rev", config=PLOT)
        st.download_button("Download the paths (GIF)", file_name="reverse-paths.gif",
                           data=partial(reverse_gif, base, tuple(res), tuple(names[k] for k in res),
                                        tuple(colors[k] for k in res)),   # bound now: runs on click
                           mime=export.GIF_MIME, on_click="ignore", key="sde_gif",
                           help="300 particles of each sampler from the window's first time to the "
                                "end; drawn when you click.")
        pj = projected_view(base)
        paths = [dict(name=names[k], color=colors[k], t=r["times"], u=r["u"]) for k, r in res.items()]
        st.plotly_chart(render_sde.projected_figure(pj["ts"], pj["us"], pj["logp"], paths,
                                                    title="The same paths in (t, (x₁+x₂)/√2), t from 1 to 0",
                                                    reverse=True),
                        key="sde_proj_rev", config=PLOT)
        st.markdown(weights_table([w, 1 - w], {names[k]: r["summary"] for k, r in res.items()},
                                  labels=[f"mode at ({a:g}, {a:g})", f"mode at ({-a:g}, {-a:g})"],
                                  corner="sampler",
                                  extra={"nfe": ("NFE", "{:d}"), "seconds": ("seconds", "{:.2f}")}))
        st.caption(f"Paths in the panels are drawn from t = {t_cut:.2f} down (before that the noise "
                   "is wider than the window). Stochastic paths jitter and can cross between modes late; ODE paths are smooth "
                   "and each prior point has exactly one destination (the ODE is a bijection — that "
                   "is what makes exact likelihoods possible). Both recover the weights, because "
                   "the weights are in p_1's shape and in the score at large t. The ODE's NFE is "
                   "chosen by the adaptive solver.")

with tab_cost:
    st.markdown(
        "Each sampler gets a fixed budget of score evaluations (NFE): the reverse SDE takes N = "
        "budget steps, predictor–corrector N = budget/2 (one corrector step each), annealed "
        "Langevin (the NCSN baseline, σ 20 → 1, ε = 0.1, with the final denoising step) 10 "
        "levels × budget/10 steps. The ODE's cost is set by its tolerance, so it is run at "
        "tolerances 1e-1 … 1e-5 and placed at the NFE it needed.")
    c1, c2 = st.columns([3, 1])
    with c1:
        budgets = st.multiselect("Budgets (NFE)", [10, 20, 50, 100, 200, 500, 1000],
                                 default=[20, 50, 100, 200, 500], key="sde_budgets")
    with c2:
        n_seeds = url_state.select_slider("Seeds averaged", [1, 2, 3], 1, key="sde_seeds")
    go = st.button("Run the comparison", key="sde_sweep_go", type="primary",
                   help="Runs every sampler at every budget with the settings above in the "
                        "background (a few seconds to a minute); the page stays usable.")
    key = (replace(base, record_every=0, record_particles=0), tuple(sorted(budgets)), n_seeds)
    if go and budgets:
        supersede({"": st.session_state["sde_sweep"]["run"]} if "sde_sweep" in st.session_state else None)
        run = start_job(None, sweep_argv(base, sorted(budgets), n_seeds), name="sde-sweep",
                        sub=COMPUTED, out_flag="--run-dir", announce=False)
        if run is not None:
            st.session_state["sde_sweep"] = {"key": key, "run": str(run)}
    job = st.session_state.get("sde_sweep")
    rows = None
    if job is None:
        st.info("Press **Run the comparison** to measure all samplers with the current target, "
                "SDE and snr.")
    elif not follow_jobs({"Samplers at every budget": job["run"]}, key="sde_sweep_job"):
        info = job_infos({"": job["run"]})[""]
        result = read_json(info.dir / "result.json", None) if info.state == "finished" else None
        rows = result.get("rows") if isinstance(result, dict) else None
        if info.state != "finished":
            st.warning(ended_sentence(info, "The comparison"))
        elif not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            st.error("The comparison's result.json cannot be read; press the button again.")
            rows = None
        elif job["key"] != key:
            st.caption("Results below are for earlier settings; press the button to update them.")
    if rows is not None:
        c1, c2 = st.columns(2)
        with c1:
            st.plotly_chart(render_sde.quality_figure(rows, "weight_error", title="Weight error vs NFE",
                                                      y_title="TV distance of mode weights"),
                            key="sde_q_w", config=PLOT)
        with c2:
            st.plotly_chart(render_sde.quality_figure(rows, "sliced_wasserstein",
                                                      title="Sample distance vs NFE",
                                                      y_title="sliced W₂ to exact samples"),
                            key="sde_q_sw", config=PLOT)
        bad = [r for r in rows if r.get("nfe") is None]
        for r in bad:
            st.warning(f"{r['sampler']} at budget {r['budget']}: {r['error']}")
        st.markdown(
            "**Reading it.** Lower is better; the leftmost point under a given error is the "
            "cheapest sampler for that quality. On these mixtures the ODE reaches a small weight "
            "error with the fewest evaluations (its adaptive steps are large where p_t is smooth); "
            "the reverse SDE needs a few hundred steps; PC pays two evaluations per step, which "
            "buys little with an exact score (the corrector fixes errors a learned score makes). "
            "The sliced distance is noisy for two well-separated modes: a 1% change in weights "
            "moves many quantiles by the distance between the modes.")

with tab_lik:
    st.markdown(
        "The probability-flow ODE is a bijection from data to prior, so the change-of-variables "
        "formula gives $\\log p_0(x) = \\log p_1(x(1)) + \\int_0^1 \\nabla\\cdot\\tilde f(x(t),t)\\,dt$ "
        "with $\\tilde f = f - \\tfrac12 g^2 s_\\theta$. Below, a small time-conditional MLP "
        "$s_\\theta(x,t)$ trained with the continuous objective on the seeds' mixture (shipped in "
        "`checkpoints/`); the divergence is the exact trace (2 backward passes in 2D).")
    ckpts = sde2d_models()
    if not ckpts:
        st.warning("No time-conditional 2D score found in checkpoints/; train one with "
                   "`python -m engine train-sde 2d --out checkpoints/NAME`.")
    else:
        c1, c2 = st.columns([2, 1])
        with c1:
            label = st.selectbox("Learned model", list(ckpts), key="sde_lik_model")
        with c2:
            res_n = url_state.select_slider("Grid", [16, 24, 32, 48], 24, key="sde_lik_n")
        if st.button("Compute the ODE log-density map", key="sde_lik_go", type="primary",
                     help="Runs in the background (seconds to a minute); the page stays usable."):
            supersede({"": st.session_state["sde_lik"]["run"]} if "sde_lik" in st.session_state else None)
            run = start_job(None, ["nll", "--checkpoint", ckpts[label], "--grid", str(res_n)],
                            name="sde-density-map", sub=COMPUTED, out_flag="--run-dir", announce=False)
            if run is not None:
                st.session_state["sde_lik"] = {"key": (label, res_n), "run": str(run)}
        job = st.session_state.get("sde_lik")
        if job is None:
            st.info("Press the button: the ODE runs from each of the grid's points (seconds to a "
                    "minute, in the background).")
        elif not follow_jobs({"ODE log-density map": job["run"]}, key="sde_lik_job"):
            m = density_maps(job["run"])
            if "error" in m:
                st.warning(m["error"])
            else:
                nn_ = len(m["grid"])
                if job["key"] != (label, res_n):
                    st.caption("Maps below are for an earlier choice; press the button to update.")
                st.plotly_chart(render_sde.likelihood_figure(m), key="sde_lik_maps", config=PLOT)
                st.markdown(
                    f"ODE: {m['nfe']} function evaluations, {m['seconds']:.1f} s for {nn_ * nn_} points. "
                    f"Mean |ODE − exact| where p is within 6 nats of its peak: "
                    f"**{m['near_error']:.3f} nats**. Far from the "
                    "data the model was never trained and the maps disagree — the same low-density "
                    "problem the seeds describe for Langevin dynamics. "
                    "`python -m engine nll --checkpoint …` gives the mean NLL on samples.")

with tab_mnist:
    models = sde_mnist_models()
    if not models:
        st.warning("No MNIST score checkpoint found in checkpoints/; see the MNIST page.")
    else:
        label = st.selectbox("Score model", list(models), key="sde_mnist_model")
        path = models[label]
        try:
            _, msde, mmeta = load_mnist_model(path)
        except (ValueError, OSError) as err:
            st.error(str(err))
            st.stop()
        st.caption(f"SDE: {render_sde.describe_sde(msde.describe())} · trained {mmeta.get('steps', mmeta.get('step', '?'))} steps.")
        st.subheader("Bits per dimension")
        measured = sde_mnist_measurements(path)
        now_steps = mmeta.get("steps", mmeta.get("step"))
        old_steps = {r.get("model_steps") for r in measured.values() if isinstance(r, dict)}
        if measured and old_steps != {now_steps}:
            st.caption(f"The stored measurements below were taken on an earlier version of this "
                       f"checkpoint (training step {', '.join(str(s) for s in old_steps)}; it is now "
                       f"at step {now_steps}).")
        bpd = measured.get("bpd") or (mmeta.get("metrics") or {}).get("bpd")
        st.markdown(
            "Test digits are **uniformly dequantised**, $x = (k + u)/256$ with $u \\sim U[0,1)$, "
            "and $\\text{bpd} = -\\log p(x) / (784 \\ln 2) + 8$ (the +8 accounts for scaling "
            "256 levels to $[0,1)$). The trace is Hutchinson's estimate with one Rademacher probe "
            "per batch; the ODE is RK45 at rtol = atol = 1e-5.")
        if bpd:
            st.metric("Measured bits/dim (test digits)", f"{bpd['bpd']:.3f}",
                      help=f"{bpd['images']} test digits, ± {bpd.get('bpd_stderr')} (standard error); "
                           f"`{bpd.get('command', '')}`")
        st.caption(BPD_REFERENCES)
        n_bpd = url_state.select_slider("Test digits to evaluate now", [1, 2, 4, 8], 2, key="sde_bpd_n")
        if st.button("Compute bits/dim", key="sde_bpd_go",
                     help="Runs in the background (about a minute per few digits on a CPU); the "
                          "page stays usable, and Cancel stops it."):
            supersede({"": st.session_state["sde_bpd"]["run"]} if "sde_bpd" in st.session_state else None)
            run = start_job(None, ["sde-mnist", "bpd", "--checkpoint", path, "--images", str(n_bpd),
                                   "--seed", str(seed)], name="sde-bpd", sub=COMPUTED,
                            out_flag="--run-dir", record={"checkpoint": path}, announce=False)
            if run is not None:
                st.session_state["sde_bpd"] = {"key": (path, n_bpd, seed), "run": str(run)}
        job = st.session_state.get("sde_bpd")
        if job is not None and not follow_jobs({"Bits/dim": job["run"]}, key="sde_bpd_job"):
            info = job_infos({"": job["run"]})[""]
            r = read_json(info.dir / "result.json", None) if info.state == "finished" else None
            if info.state != "finished":
                st.warning(ended_sentence(info, "The bits/dim job"))
            elif not isinstance(r, dict) or not all(k in r for k in ("bpd", "images", "nfe_mean")):
                st.error("The bits/dim job's result.json cannot be read; press the button again.")
            else:
                if job["key"] != (path, n_bpd, seed):
                    st.caption("The figure below is for an earlier model or number of digits.")
                st.write(f"{r['bpd']:.3f} bits/dim on {r['images']} test digits "
                         f"({r['nfe_mean']:.0f} ODE evaluations, {r['seconds']:.0f} s).")

        st.subheader("Quality against cost on MNIST")
        if measured.get("cost"):
            c = measured["cost"]
            c1, c2 = st.columns(2)
            with c1:
                st.plotly_chart(render_sde.quality_figure(c["rows"], "frechet_distance",
                                                          title="Fréchet distance vs NFE",
                                                          y_title="FD of classifier features"),
                                key="sde_mnist_fd", config=PLOT)
            with c2:
                st.plotly_chart(render_sde.quality_figure(c["rows"], "mean_confidence",
                                                          title="Classifier confidence vs NFE",
                                                          y_title="mean max-probability"),
                                key="sde_mnist_conf", config=PLOT)
            st.caption(f"{c['n']} samples per point, measured with the project's classifier "
                       f"(`{c.get('command', '')}`); lower FD is better. Sampling at these budgets "
                       "takes minutes on a CPU, so this chart is precomputed.")
        else:
            st.info("Not measured for this model yet: `python -m engine sde-mnist cost --checkpoint "
                    f"{Path(path).name}`.")

        st.subheader("Inpainting")
        if measured.get("inpaint"):
            r = measured["inpaint"]
            st.metric("Completions the classifier assigns to the true class", f"{r['rate']:.0%}",
                      help=f"{r['digits']} test digits × {r['completions']} completions, mask "
                           f"'{r['mask']}', {r['steps']} steps, snr {r['snr']}; the classifier "
                           f"reads the masked digits alone correctly {r['masked_input_accuracy']:.0%} "
                           f"of the time. `{r.get('command', '')}`")
        st.markdown(
            "Hide part of a real test digit and let a predictor–corrector sampler fill it in. After "
            "every step the known pixels are replaced by a fresh forward-SDE sample of the true "
            "pixels at the current $t$ ($m(t)\\,y + \\text{std}(t)\\,z$), so the unknown pixels are "
            "drawn from $p_t(x_{\\text{unknown}} \\mid x_{\\text{known}})$ all the way down. "
            "Replacement alone lets the two halves disagree; RePaint's **resampling** goes back up "
            "the forward SDE every few steps and down again, so the filled-in part has time to agree "
            "with the known part (with the shipped NCSN: 82 % of bottom-half completions keep the "
            "digit's class, 75 % without resampling).")
        c1, c2, c3, c4, c5 = st.columns(5)
        with c1:
            idx = url_state.number_input("Test digit #", 0, 9999, 0, 1, key="sde_inp_idx")
            mask_kind = url_state.selectbox("Mask", list(MASKS), list(MASKS)[0], format_func=MASKS.get,
                                            key="sde_inp_mask")
        with c2:
            n_comp = url_state.slider("Completions", 1, 8, 4, key="sde_inp_n")
        with c3:
            inp_steps = url_state.select_slider("Time steps N", [50, 100, 200, 300, 500], INPAINT_STEPS,
                                                key="sde_inp_steps")
        with c4:
            inp_snr = url_state.select_slider("snr r", [0.05, 0.1, 0.16, 0.2, 0.3], 0.16,
                                              key="sde_inp_snr", help=SNR_HELP)
        with c5:
            inp_passes = url_state.select_slider("Resampling passes", [1, 2, 5, 10], INPAINT_RESAMPLE,
                                                 key="sde_inp_passes",
                                                 help=f"RePaint: every {INPAINT_JUMP} steps go back up and "
                                                      f"down again, this many passes in all (1: replacement only).")
        key = (path, int(idx), mask_kind, n_comp, inp_steps, inp_snr, inp_passes, seed)
        moves = len(repaint_path(inp_steps, INPAINT_JUMP, inp_passes)) - 1
        if st.button("Inpaint", key="sde_inp_go", type="primary",
                     help=f"Predictor–corrector in the background: about {2 * moves} score evaluations."):
            supersede({"": st.session_state["sde_inp"]["run"]} if "sde_inp" in st.session_state else None)
            run = start_job(None, ["sde-mnist", "inpaint", "--checkpoint", path, "--index", str(int(idx)),
                                   "--completions", str(n_comp), "--mask", mask_kind,
                                   "--steps", str(inp_steps), "--snr", str(inp_snr), "--seed", str(seed),
                                   "--jump", str(INPAINT_JUMP), "--resample", str(inp_passes)],
                            name="sde-inpaint", sub=COMPUTED, out_flag="--run-dir",
                            record={"checkpoint": path}, announce=False)
            if run is not None:
                st.session_state["sde_inp"] = {"key": key, "run": str(run)}
        job = st.session_state.get("sde_inp")
        running = job is not None and follow_jobs({"Inpainting": job["run"]}, key="sde_inp_job")
        res = None if job is None or running else inpaint_result(job["run"])
        if res is not None and "error" in res:
            st.warning(res["error"])
            res = None
        if res is not None and res["key"] != key[1:3]:
            st.caption("Completions below are for an earlier digit or mask; press Inpaint.")
        shown_idx, shown_mask = res["key"] if res is not None else (int(idx), mask_kind)
        digit = masked_digit(shown_idx, shown_mask, seed)
        shown = [digit["original"], digit["masked"]]
        captions = [f"original #{shown_idx} (label {digit['label']})", "masked (hidden = grey)"]
        if res is not None:
            for j, (img, said) in enumerate(zip(res["comp"], classify(res["comp"]))):
                shown.append(img)
                captions.append(f"completion {j + 1}: classifier says {said}")
        cols = st.columns(len(shown))
        for col, img, cap in zip(cols, shown, captions):
            col.image(grid_png([img], nrow=1, scale=4), caption=cap)
        if res is not None:
            d1, d2 = st.columns(2)
            d1.download_button("Download original, masked and completions (PNG)",
                               data=inpaint_png(job["run"], shown_idx, shown_mask, seed),
                               file_name=f"inpaint_digit{shown_idx}_{shown_mask}.png",
                               mime="image/png", key="sde_inp_dl", on_click="ignore",
                               help="Each digit upscaled (nearest-neighbour): at least 512 px wide.")
            d2.download_button("Completions (.npy)", data=res["npy"],
                               file_name=f"inpaint_digit{shown_idx}_{shown_mask}.npy",
                               mime="application/octet-stream", key="sde_inp_npy", on_click="ignore",
                               help="The raw (completions, 28, 28) float32 array in [0, 1].")
            st.caption(f"{res['nfe']} score evaluations in {res['seconds']:.1f} s. "
                       f"`python -m engine sde-mnist inpaint --checkpoint {Path(path).name} "
                       f"--mask {shown_mask}` measures how often the classifier agrees with the "
                       "true label over many digits.")
