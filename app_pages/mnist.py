"""MNIST: a Noise Conditional Score Network on real MNIST, sampled by annealed Langevin dynamics,
next to the single-σ denoising baseline sampled by plain Langevin; downloads; quality figures;
training in the background."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from engine.render import export
from engine.store.checkpoints import CheckpointError, read_meta
from engine.store.registry import (example_png, image_runs, loss_records, modified, preview_png,
                                   runs_started_with, shipped)
from engine.mnist.sampling import DEFAULT_ODE_STEPS, SampleConfig, chosen_mode, planned, rule_step_size
from engine.progress import format_seconds
from engine.store.jobs import JobManager, read_array
from engine.store.runs import read_json, read_run
from engine.render import train as render_train
from engine.render.images import (class_counts_figure, grid_png, npy_bytes, slide_grid_png,
                                  slide_png, zip_of_pngs)
from engine.training.flags import config_argv
from engine.training.images import ImageTrainConfig

from ui import url_state
from ui.jobs import (COMPUTED, ended_sentence, follow_jobs, job_infos, job_manager, start_job,
                     supersede)


N_CHOICES = [4, 16, 36, 64, 100]
SAMPLER_NAMES = {"heun": "probability-flow ODE (Heun)", "annealed": "annealed Langevin (NCSN)",
                 "plain": "plain Langevin at σ_L"}


# -- caches -------------------------------------------------------------------------------------------

def get_jobs() -> JobManager:
    return job_manager()


@st.cache_resource(show_spinner=False)
def finished_jobs() -> dict:
    """Finished sampling jobs by (checkpoint, mtime, config, device): the same settings show the
    same grid at once, without sampling again."""
    return {}


@st.cache_data(show_spinner=False, max_entries=32)
def quality(images) -> dict:
    from engine.mnist.quality import evaluate_samples
    return evaluate_samples(images)


@st.cache_data(show_spinner=False, max_entries=8)
def real_quality(n: int, seed: int) -> dict:
    from engine.mnist.quality import real_reference
    return real_reference(n, seed=seed)


@st.cache_data(show_spinner=False, max_entries=16)
def job_result(run_dir: str, updated: float) -> dict:
    """A finished sampling job's images, frames and figures, with the download bytes prepared
    once (slide-size grid PNG, .npy); {"error": one sentence} for damaged files."""
    images = read_array(Path(run_dir) / "samples.npy", ndim=3)
    frames = read_array(Path(run_dir) / "frames.npy", ndim=4)
    info = read_json(Path(run_dir) / "result.json", None)
    if images is None or frames is None or not isinstance(info, dict):
        return {"error": "This sampling job's results cannot be read (damaged or missing files); "
                         "press Sample to draw them again."}
    try:
        levels, sigmas = list(info["frame_levels"]), [float(v) for v in info["frame_sigmas"]]
        seconds, nfe = float(info["seconds"]), int(info["nfe"])
        schedule = {"levels": int(info["levels"]), "mode": info.get("mode"),
                    **{k: info.get(k) for k in ("steps_per_level", "step_size", "denoise")}}
    except (KeyError, TypeError, ValueError):
        return {"error": "This sampling job's result.json is incomplete; press Sample to draw "
                         "the digits again."}
    return {"images": images, "frames": frames, "frame_levels": levels, "frame_sigmas": sigmas,
            "seconds": seconds, "nfe": nfe, "schedule": schedule,
            "grid_png": slide_grid_png(images), "npy": npy_bytes(images)}


def sampling_job(ckpt_path: str, cfg: SampleConfig, label: str) -> tuple[str, tuple] | None:
    """(run folder, settings key): a finished job's with exactly these settings, else a new
    sampling job's (None when it could not start: the page shows one line)."""
    device = str(st.session_state.get("device", "auto"))
    key = (ckpt_path, modified(ckpt_path), cfg, device)
    done = finished_jobs().get(key)
    if done and read_run(done).state == "finished":
        return done, key
    argv = ["sample", "--checkpoint", ckpt_path, *config_argv(cfg), "--device", device]
    run_dir = start_job(cfg, argv, name=f"sample-{label}", sub=COMPUTED, out_flag="--run-dir",
                        record={"checkpoint": ckpt_path, "key": repr(key)}, announce=False)
    return None if run_dir is None else (str(run_dir), key)


def remember_finished(jobs_state: dict) -> None:
    """Finished jobs answer the same settings at once next time (finished_jobs)."""
    store = finished_jobs()
    for run_dir in jobs_state["runs"].values():
        key = jobs_state["cache_keys"].get(run_dir)
        if key is not None and key not in store and read_run(run_dir).state == "finished":
            if len(store) > 24:
                store.pop(next(iter(store)))
            store[key] = run_dir


def estimate_text(meta: dict, cfg: SampleConfig) -> str:
    """The time for these settings at the speed the newest finished sampling job with the same
    sampler measured here, per image and step (none yet: say so)."""
    try:
        plan = planned(meta, cfg)
    except ValueError:
        return ""
    for info in job_manager(COMPUTED).runs():
        res = read_json(info.dir / "result.json", None) if info.state == "finished" else None
        try:
            if res["mode"] != plan["mode"]:
                continue
            rate = float(res["seconds"]) / (int(res["n"]) * int(res["total_steps"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue
        return (f"At the speed the last such job measured here ({res['seconds']:.1f} s for "
                f"{res['n']} images × {res['total_steps']} steps), about "
                f"{format_seconds(rate * cfg.n * plan['total_steps'])}.")
    return "The first job with this sampler measures the speed here and shows its ETA as it runs."


@st.cache_data(show_spinner=False, max_entries=4)
def example_download(path: str) -> bytes:
    """The shipped example grid at slide size (each digit upscaled nearest-neighbour)."""
    return slide_png(example_png(path))


def show_result(title: str, res: dict) -> None:
    """A finished job's grid (with a slider over the levels), downloads and quality figures."""
    frames, levels, sigmas = res["frames"], res["frame_levels"], res["frame_sigmas"]
    labels = ["start" if i == 0 else f"level {lv + 1} (σ = {s:.3g})"
              for i, (lv, s) in enumerate(zip(levels, sigmas))]
    labels[-1] = "final" + (" (denoised)" if res["schedule"].get("denoise") else "")
    if len(frames) > 1:
        which = st.select_slider("After", options=list(range(len(frames))),
                                 value=len(frames) - 1, format_func=lambda i: labels[i],
                                 key=f"mnist_frame_{title}")
    else:
        which = 0
    shown = frames[which] if which < len(frames) - 1 else res["images"]
    st.image(grid_png(shown, scale=2), caption=labels[which], width="stretch")
    sch_info = res["schedule"]
    how = (f"Heun, {sch_info['levels']} σ levels" if sch_info.get("mode") == "heun" else
           f"{sch_info['levels']} level(s) × {sch_info.get('steps_per_level')} steps · "
           f"ε = {sch_info.get('step_size') or 0:.3g}")
    st.caption(f"{res['seconds']:.1f} s · {res['nfe']} score evaluations · {how}")
    images = res["images"]
    slug = "ncsn" if title.startswith("NCSN") else "baseline"
    d1, d2, d3 = st.columns(3)
    d1.download_button("Grid PNG", res["grid_png"], file_name=f"{slug}_grid.png",
                       mime="image/png", on_click="ignore", key=f"dl_png_{slug}",
                       help="Each digit upscaled (nearest-neighbour): at least 512 px wide.")
    d2.download_button("ZIP of PNGs", lambda im=images, s=slug: zip_of_pngs(im, s),
                       file_name=f"{slug}_images.zip", mime="application/zip",
                       on_click="ignore", key=f"dl_zip_{slug}")
    d3.download_button(".npy", res["npy"], file_name=f"{slug}_samples.npy",
                       mime="application/octet-stream", on_click="ignore", key=f"dl_npy_{slug}",
                       help="The raw (N, 28, 28) float32 array in [0, 1].")
    try:
        q = quality(images)
    except (CheckpointError, ValueError, OSError) as err:
        st.warning(f"Quality figures unavailable: {err}")
        return
    m1, m2, m3 = st.columns(3)
    m1.metric("Fréchet distance", f"{q['frechet_distance']:.1f}",
              help="Between Gaussians fitted to the shipped classifier's features of "
                   "these samples and of the 10,000 real test digits. Lower is better; "
                   "it grows when N is small, so compare at the same N.")
    m2.metric("Mean confidence", f"{q['mean_confidence']:.2f}",
              help="Average top-class probability of the classifier.")
    m3.metric("Classes present", f"{q['classes_present']}/10")
    st.plotly_chart(class_counts_figure(q["class_counts"]), key=f"hist_{slug}", config=export.CHART_CONFIG)


def live_grid(title: str, info) -> None:
    """The images after the last finished level, while the job runs."""
    images = read_array(info.dir / "current.npy", ndim=3)
    if images is not None:
        st.image(grid_png(images, scale=2), caption=f"after level {info.step} of {info.total}",
                 width="stretch")


# -- page ---------------------------------------------------------------------------------------------

st.title("MNIST: noise conditional score networks")
st.markdown(
    "One network $s_\\theta(x, \\sigma)$ learns the score of MNIST perturbed by Gaussian noise at "
    "$L$ levels $\\sigma_1 > \\dots > \\sigma_L$ (denoising score matching, "
    "$\\lambda(\\sigma)=\\sigma^2$). **Annealed Langevin** runs $T$ steps at each level, from the "
    "largest σ down, with step $\\alpha_i = \\varepsilon\\,\\sigma_i^2/\\sigma_L^2$ in the form "
    "$x \\leftarrow x + \\tfrac{\\alpha}{2} s + \\sqrt{\\alpha}\\,z$. The **baseline** is the same "
    "network trained at one small σ and sampled by plain Langevin for the same number of steps: its "
    "score is only accurate near the data, so chains started from noise get lost. A model trained "
    "on **continuous σ** is sampled by the probability-flow ODE $dx/d\\sigma = -\\sigma\\, "
    "s_\\theta(x, \\sigma)$ (Heun's method) instead: no noise is added, and far fewer network "
    "evaluations are needed."
)

choices = shipped("ncsn_unet") + image_runs(get_jobs().root)
if not choices:
    st.warning("No MNIST checkpoint is available: the shipped ones are missing from checkpoints/ "
               "and no training run has finished. Train one below.")
ncsn_choices = [c for c in choices if c.objective == "ncsn"]
dsm_choices = [c for c in choices if c.objective == "dsm"]

seed = int(st.session_state.get("seed", 0))

if ncsn_choices:
    with st.container(border=True):
        c1, c2, c3 = st.columns([2, 1, 1])
        with c1:
            pick = st.selectbox("NCSN checkpoint", ncsn_choices, format_func=lambda c: c.label,
                                key="mnist_ckpt")
        try:
            meta = read_meta(pick.path)
        except CheckpointError as err:
            st.error(str(err))
            st.stop()
        if st.session_state.get("_mnist_ckpt_seen", pick.path) != pick.path:
            for k in ("mnist_T", "mnist_ode_steps"):     # another checkpoint: its own defaults
                st.session_state.pop(k, None)
        st.session_state["_mnist_ckpt_seen"] = pick.path
        sch = meta["schedule"]
        default_T = int(sch.get("steps_per_level", 5))
        modes = (["heun"] if sch.get("noise") == "continuous" else []) + ["annealed", "plain"]
        own_mode = chosen_mode(meta, SampleConfig())
        c4, c5, c6 = st.columns([1, 1, 2])
        with c6:
            sampler = url_state.radio(
                "Sampler", modes, own_mode if own_mode in modes else modes[0], horizontal=True,
                key="mnist_sampler_ode" if "heun" in modes else "mnist_sampler",  # own options
                format_func=SAMPLER_NAMES.get,
                help="The ODE sampler (models trained on continuous σ) integrates the probability-flow "
                     "ODE dx/dσ = −σ s(x, σ) by Heun's method: 2n − 1 network evaluations for n "
                     "levels. Plain Langevin runs all L·T steps at the smallest σ with the same ε: "
                     "the score is only trained near the data there.")
            compare = url_state.checkbox(
                "Compare with the single-σ baseline " + ("(plain Langevin, its own budget)"
                                                         if sampler == "heun" else "(same budget)"),
                bool(dsm_choices), disabled=not dsm_choices, key="mnist_compare")
            url_state.copy_link()
        ode = sampler == "heun"
        with c2:
            n = url_state.select_slider("Images", N_CHOICES, 64, key="mnist_n")
        with c3:
            if ode:
                ode_steps = url_state.number_input(
                    "ODE levels n", 2, 200, int((meta.get("sampler") or {}).get("ode_steps", DEFAULT_ODE_STEPS)),
                    key="mnist_ode_steps", help="σ levels of the Heun sampler on a Karras grid "
                                                "(2n − 1 network evaluations).")
                T = default_T
            else:
                T = url_state.number_input("Steps per level T", 1, 50, default_T, key="mnist_T",
                                           help="Langevin steps at each noise level. The step size ε "
                                                "below follows the NCSNv2 rule for this T unless you set it.")
        gamma = float(sch["gamma"])
        rule_eps = rule_step_size(meta, int(T))
        with c4:
            eps_override = url_state.number_input(
                "Step size ε (0 = rule)", 0.0, 1e-2, 0.0, 1e-6, format="%.2e", key="mnist_eps",
                disabled=ode, help="Langevin only. Paper form: α_i = ε σ_i²/σ_L². The NCSNv2 rule "
                                   "picks ε so that, after T steps, the chain's variance matches the "
                                   "next level's.")
        with c5:
            denoise = url_state.checkbox("Final denoising", True, key="mnist_denoise", disabled=ode,
                                         help="Langevin only: after the last level, x ← x + σ_L² "
                                              "s(x, σ_L) (Tweedie's formula) removes the last bit "
                                              "of noise. The ODE sampler always ends on σ = 0.")
        eps = float(eps_override) if eps_override > 0 and not ode else None
        if ode:
            cfg = SampleConfig(n=int(n), mode="heun", ode_steps=int(ode_steps), seed=seed)
            st.caption(
                f"Probability-flow ODE from σ_max = {sch['sigma_max']:.3g} down to σ_min = "
                f"{sch['sigma_min']:.3g} on a Karras grid of {int(ode_steps)} levels: "
                f"{2 * int(ode_steps) - 1} network evaluations; seed {seed} (sidebar).")
        else:
            cfg = SampleConfig(n=int(n), steps_per_level=int(T), step_size=eps, denoise=denoise,
                               mode=sampler, seed=seed)
            st.caption(
                f"Schedule from the data (NCSNv2 rules): σ₁ = {sch['sigma_max']:.3g} (largest pairwise "
                f"distance of the training images), σ_L = {sch['sigma_min']:.3g}, ratio γ = {gamma:.4f} "
                f"(overlap rule for D = {sch.get('dim', 784)}), L = {len(sch['sigmas'])} levels; "
                f"T = {T}, ε = {eps if eps else rule_eps:.3g} ({'yours' if eps else 'step-size rule'}). "
                f"{int(T) * len(sch['sigmas'])} Langevin steps; seed {seed} (sidebar).")
        base_pick = None
        if compare and dsm_choices:
            base_pick = st.selectbox("Baseline checkpoint", dsm_choices, format_func=lambda c: c.label,
                                     key="mnist_base")
        go_button = st.button("Sample", type="primary", key="mnist_sample",
                              help="Sampling runs in the background: the grid sharpens level by "
                                   "level, and the rest of the page stays usable.")

    key = ("mnist", pick.path, cfg, base_pick.path if base_pick else None)
    if go_button:
        wanted = {f"NCSN · {SAMPLER_NAMES[sampler].split(' (')[0]}": (pick.path, cfg, "NCSN")}
        if base_pick is not None:
            bcfg = replace(cfg, mode="plain", steps_per_level=None if ode else int(T), step_size=None,
                           ode_steps=None, denoise=True)
            wanted["Baseline · plain Langevin"] = (base_pick.path, bcfg, "baseline")
        supersede((st.session_state.get("mnist_jobs") or {}).get("runs"))
        runs, cache_keys = {}, {}
        for title, (path, c, label) in wanted.items():
            started = sampling_job(path, c, label)
            if started is not None:
                runs[title], cache_keys[started[0]] = started
        if runs:
            st.session_state["mnist_jobs"] = {"key": key, "runs": runs, "cache_keys": cache_keys}
    jobs_state = st.session_state.get("mnist_jobs")

    if jobs_state is None:
        st.info("Press **Sample** to draw digits; the same settings and seed give the same grid. "
                + estimate_text(meta, cfg))
        example = example_png(pick.path)
        if example is not None:
            st.image(example, caption="Example from the shipped model (64 images, "
                     "default settings, seed 0)", width=420)
            st.download_button("Download this example grid (PNG)", example_download(pick.path),
                               file_name="ncsn_mnist_example.png", mime="image/png",
                               on_click="ignore", key="mnist_dl_example")
    else:
        if jobs_state["key"] != key:
            st.caption("The digits below are for earlier settings; press **Sample** to draw these.")
        runs = jobs_state["runs"]
        if not follow_jobs(runs, key="mnist_jobs", live=live_grid):
            remember_finished(jobs_state)
            infos = job_infos(runs)
            cols = st.columns(len(runs))
            for col, (title, info) in zip(cols, infos.items()):
                with col:
                    st.subheader(title)
                    if info.state != "finished":
                        partial = read_array(info.dir / "current.npy", ndim=3)
                        st.warning(ended_sentence(info, "Sampling"))
                        if partial is not None and info.state == "cancelled":
                            st.image(grid_png(partial, scale=2), width="stretch",
                                     caption=f"where it stopped (after level {info.step} of {info.total})")
                        continue
                    res = job_result(str(info.dir), float(info.status.get("updated") or 0))
                    if "error" in res:
                        st.error(res["error"])
                        continue
                    show_result(title, res)
            try:
                real = real_quality(int(n), seed)
                st.caption(f"Reference, {int(n)} real test digits: Fréchet distance "
                           f"{real['frechet_distance']:.1f}, mean confidence {real['mean_confidence']:.2f}, "
                           f"{real['classes_present']}/10 classes.")
            except (CheckpointError, ValueError, OSError):
                pass


# -- training -------------------------------------------------------------------------------------

st.divider()
st.subheader("Train in the background")
st.markdown("Training runs as a separate process writing its own run folder; the page follows "
            "it, and finished runs appear in the checkpoint list above. The σ schedule comes from "
            "the data by the NCSNv2 rules unless you override it.")
with st.form("mnist_train"):
    t1, t0, t2, t3, t4 = st.columns(5)
    objective = t1.selectbox("Objective", ["ncsn", "dsm"],
                             format_func=lambda o: {"ncsn": "NCSN (many σ)", "dsm": "single-σ DSM"}[o])
    noise = t0.selectbox("Noise levels", ["continuous", "levels"],
                         format_func={"continuous": "continuous σ (ODE sampler)",
                                      "levels": "L fixed levels (Langevin)"}.get,
                         help="NCSN: σ drawn log-uniformly between σ_L and σ₁ (one net for every σ, "
                              "sampled by the probability-flow ODE), or among L geometric levels.")
    steps = t2.number_input("Steps", 10, 200_000, 2000, step=100)
    sigma_min = t3.number_input("σ_L (0 = default)", 0.0, 1.0, 0.0, format="%.3f",
                                help="The smallest σ; default 0.002 for continuous σ, 0.01 for levels.")
    dsm_sigma = t4.number_input("Baseline σ (DSM)", 0.01, 5.0, 0.1, format="%.2f")
    t5, t6, t7, t8 = st.columns(4)
    sigma_max = t5.number_input("σ₁ (0 = largest pairwise distance)", 0.0, 100.0, 0.0)
    gamma_in = t6.number_input("Ratio γ (0 = overlap rule)", 0.0, 2.0, 0.0, format="%.4f")
    batch = t7.selectbox("Batch", [32, 64, 128, 256], index=1)
    minutes = t8.number_input("Stop after minutes (0 = no limit)", 0.0, 600.0, 0.0)
    submitted = st.form_submit_button("Start training")
if submitted:
    train_cfg = ImageTrainConfig(objective=objective, steps=int(steps), batch=int(batch), noise=noise,
                                 sigma_min=float(sigma_min) or None, dsm_sigma=float(dsm_sigma),
                                 sigma_max=float(sigma_max) or None, gamma=float(gamma_in) or None,
                                 max_minutes=float(minutes) or None)
    if sigma_max and sigma_max <= train_cfg.lowest_sigma:
        st.error("σ₁ must be larger than σ_L.")
    elif gamma_in and gamma_in <= 1:
        st.error("The ratio γ must be larger than 1.")
    else:
        argv = ["train", "mnist", *config_argv(train_cfg),
                "--device", str(st.session_state.get("device", "auto"))]
        start_job(train_cfg, argv, name=f"mnist-{objective}",
                  record={"objective": objective, "steps": int(steps)})


@st.fragment(run_every=3)
def training_runs() -> None:
    jobs = get_jobs()
    mine = runs_started_with(jobs.runs(), "train", "mnist")
    if not mine:
        st.caption("No MNIST training runs yet.")
        return
    for info in mine[:5]:
        with st.container(border=True):
            h1, h2 = st.columns([4, 1])
            h1.markdown(f"**{info.name}** · {info.dir.name} · {info.state}")
            if info.state in ("queued", "starting", "running"):
                if h2.button("Cancel", key=f"cancel_{info.dir.name}"):
                    jobs.cancel(info.dir)
            st.progress(info.progress, text=info.message or info.state)
            recs = loss_records(info.dir)
            c1, c2, c3 = st.columns([2, 2, 1])
            if recs:
                c1.plotly_chart(render_train.loss_figure([render_train.loss_curve(recs, "loss")],
                                                         title="Loss", height=180, log_y=True),
                                key=f"loss_{info.dir.name}", config=export.CHART_CONFIG)
                last = recs[-1].get("loss_per_level") or []
                try:
                    sig = read_meta(info.dir / "model")["schedule"]["sigmas"]
                except (CheckpointError, KeyError):
                    sig = list(range(1, len(last) + 1))
                per_sigma = dict(zip(sig, last))
                if any(v is not None for v in per_sigma.values()):
                    c2.plotly_chart(render_train.per_sigma_figure(
                        per_sigma, title="Loss per σ (latest records)", log_y=False, mode="markers",
                        height=180), key=f"persig_{info.dir.name}", config=export.CHART_CONFIG)
            preview = preview_png(info.dir)
            if preview is not None:
                c3.image(preview, caption="preview (EMA)", width=140)


training_runs()
