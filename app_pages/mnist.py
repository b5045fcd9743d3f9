"""MNIST: a Noise Conditional Score Network on real MNIST, sampled by annealed Langevin dynamics,
next to the single-σ denoising baseline sampled by plain Langevin; downloads; quality figures;
training in the background."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from engine.store.checkpoints import CheckpointError, load_model, read_meta
from engine.device import pick_device
from engine.store.registry import (example_png, image_runs, loss_records, modified, preview_png,
                                   runs_started_with, shipped)
from engine.mnist.sampling import SampleConfig, rule_step_size, sample_images
from engine.store.jobs import JobManager
from engine.render import train as render_train
from engine.render.images import class_counts_figure, grid_png, npy_bytes, zip_of_pngs
from engine.samplers.langevin import SamplerDiverged
from engine.training.flags import config_argv
from engine.training.images import ImageTrainConfig

from ui import url_state
from ui.jobs import job_manager, start_job


N_CHOICES = [4, 16, 36, 64, 100]


# -- caches -------------------------------------------------------------------------------------------

def get_jobs() -> JobManager:
    return job_manager()


@st.cache_resource(show_spinner=False, max_entries=8)
def get_model(path: str, mtime: float):
    return load_model(path)


@st.cache_resource(show_spinner=False)
def results_store() -> dict:
    """Finished samples by (checkpoint, mtime, config): the same settings show the same grid at once."""
    return {}


@st.cache_data(show_spinner=False, max_entries=32)
def quality(images) -> dict:
    from engine.mnist.quality import evaluate_samples
    return evaluate_samples(images)


@st.cache_data(show_spinner=False, max_entries=8)
def real_quality(n: int, seed: int) -> dict:
    from engine.mnist.quality import real_reference
    return real_reference(n, seed=seed)


def run_sampler(ckpt_path: str, cfg: SampleConfig, label: str) -> dict:
    """Sample (with a progress bar) or return the stored result for these exact settings."""
    device = str(pick_device(st.session_state.get("device", "auto")))
    key = (ckpt_path, modified(ckpt_path), cfg, device)
    store = results_store()
    if key in store:
        return store[key]
    try:
        model, meta = get_model(ckpt_path, modified(ckpt_path))
    except CheckpointError as err:
        return {"error": str(err)}
    bar = st.progress(0.0, text=f"{label}: sampling…")

    def progress(done, total, images=None):
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: level {done} of {total}")

    try:
        out = sample_images(model, meta, cfg, device=device, progress=progress)
    except (SamplerDiverged, ValueError) as err:
        bar.empty()
        return {"error": str(err)}
    bar.empty()
    result = {"images": out.images, "frames": out.frames, "frame_levels": out.frame_levels,
              "frame_sigmas": out.frame_sigmas, "seconds": out.seconds, "nfe": out.nfe,
              "schedule": out.schedule}
    if len(store) > 24:
        store.pop(next(iter(store)))
    store[key] = result
    return result


# -- page ---------------------------------------------------------------------------------------------

st.title("MNIST: noise conditional score networks")
st.markdown(
    "One network $s_\\theta(x, \\sigma)$ learns the score of MNIST perturbed by Gaussian noise at "
    "$L$ levels $\\sigma_1 > \\dots > \\sigma_L$ (denoising score matching, "
    "$\\lambda(\\sigma)=\\sigma^2$). **Annealed Langevin** runs $T$ steps at each level, from the "
    "largest σ down, with step $\\alpha_i = \\varepsilon\\,\\sigma_i^2/\\sigma_L^2$ in the form "
    "$x \\leftarrow x + \\tfrac{\\alpha}{2} s + \\sqrt{\\alpha}\\,z$. The **baseline** is the same "
    "network trained at one small σ and sampled by plain Langevin for the same number of steps: its "
    "score is only accurate near the data, so chains started from noise get lost."
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
        sch = meta["schedule"]
        default_T = int(sch.get("steps_per_level", 5))
        with c2:
            n = url_state.select_slider("Images", N_CHOICES, 64, key="mnist_n")
        with c3:
            T = url_state.number_input("Steps per level T", 1, 50, default_T, key="mnist_T",
                                       help="Langevin steps at each noise level. The step size ε "
                                            "below follows the NCSNv2 rule for this T unless you set it.")
        gamma = float(sch["gamma"])
        rule_eps = rule_step_size(meta, int(T))
        c4, c5, c6 = st.columns([1, 1, 2])
        with c4:
            eps_override = url_state.number_input(
                "Step size ε (0 = rule)", 0.0, 1e-2, 0.0, 1e-6, format="%.2e", key="mnist_eps",
                help="Paper form: α_i = ε σ_i²/σ_L². The NCSNv2 rule picks ε so that, after T "
                     "steps, the chain's variance matches the next level's.")
        with c5:
            denoise = url_state.checkbox("Final denoising", True, key="mnist_denoise",
                                         help="After the last level, x ← x + σ_L² s(x, σ_L) "
                                              "(Tweedie's formula) removes the last bit of noise.")
        with c6:
            sampler = url_state.radio("Sampler", ["annealed", "plain"], "annealed", horizontal=True,
                                      key="mnist_sampler",
                                      format_func=lambda m: {"annealed": "annealed Langevin (NCSN)",
                                                             "plain": "plain Langevin at σ_L"}[m],
                                      help="Plain Langevin runs all L·T steps at the smallest σ with "
                                           "the same ε: the score is only trained near the data there.")
            compare = url_state.checkbox("Compare with the single-σ baseline (same budget)",
                                         bool(dsm_choices), disabled=not dsm_choices,
                                         key="mnist_compare")
            url_state.copy_link()
        eps = float(eps_override) if eps_override > 0 else None
        st.caption(
            f"Schedule from the data (NCSNv2 rules): σ₁ = {sch['sigma_max']:.3g} (largest pairwise "
            f"distance of the training images), σ_L = {sch['sigma_min']:.3g}, ratio γ = {gamma:.4f} "
            f"(overlap rule for D = {sch.get('dim', 784)}), L = {len(sch['sigmas'])} levels; "
            f"T = {T}, ε = {eps if eps else rule_eps:.3g} ({'yours' if eps else 'step-size rule'}). "
            f"{int(T) * len(sch['sigmas'])} Langevin steps; seed {seed} (sidebar).")
        cfg = SampleConfig(n=int(n), steps_per_level=int(T), step_size=eps, denoise=denoise,
                           mode=sampler, seed=seed)
        base_pick = None
        if compare and dsm_choices:
            base_pick = st.selectbox("Baseline checkpoint", dsm_choices, format_func=lambda c: c.label,
                                     key="mnist_base")
        go_button = st.button("Sample", type="primary", key="mnist_sample")

    key = ("mnist", pick.path, cfg, base_pick.path if base_pick else None)
    if go_button:
        st.session_state["mnist_last"] = key
    have = results_store()
    wanted = st.session_state.get("mnist_last")
    results = {}
    if go_button or wanted == key or (pick.path, modified(pick.path), cfg) in have:
        results[f"NCSN · {sampler} Langevin"] = run_sampler(pick.path, cfg, "NCSN")
        if base_pick is not None:
            bcfg = replace(cfg, mode="plain", steps_per_level=int(T), step_size=None)
            results["Baseline · plain Langevin"] = run_sampler(base_pick.path, bcfg, "Baseline")

    if not results:
        st.info("Press **Sample** to draw digits. (About half a minute for 64 images with the "
                "shipped model on a 2-core CPU; the same settings and seed give the same grid.)")
        example = example_png(pick.path)
        if example is not None:
            st.image(example, caption="Example from the shipped model (64 images, "
                     "default settings, seed 0)", width=420)
            st.download_button("Download this example grid (PNG)", example,
                               file_name="ncsn_mnist_example.png", mime="image/png",
                               on_click="ignore", key="mnist_dl_example")
    else:
        cols = st.columns(len(results))
        for col, (title, res) in zip(cols, results.items()):
            with col:
                st.subheader(title)
                if "error" in res:
                    st.error(res["error"])
                    continue
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
                st.image(grid_png(shown, scale=2), caption=labels[which],
                         width="stretch")
                sch_info = res["schedule"]
                st.caption(f"{res['seconds']:.1f} s · {res['nfe']} score evaluations · "
                           f"{sch_info['levels']} level(s) × {sch_info['steps_per_level']} steps · "
                           f"ε = {sch_info['step_size']:.3g}")
                images = res["images"]
                slug = "ncsn" if title.startswith("NCSN") else "baseline"
                d1, d2, d3 = st.columns(3)
                d1.download_button("Grid PNG", grid_png(images), file_name=f"{slug}_grid.png",
                                   mime="image/png", on_click="ignore", key=f"dl_png_{slug}")
                d2.download_button("ZIP of PNGs", lambda im=images, s=slug: zip_of_pngs(im, s),
                                   file_name=f"{slug}_images.zip", mime="application/zip",
                                   on_click="ignore", key=f"dl_zip_{slug}")
                d3.download_button(".npy", lambda im=images: npy_bytes(im), file_name=f"{slug}_samples.npy",
                                   mime="application/octet-stream", on_click="ignore",
                                   key=f"dl_npy_{slug}")
                try:
                    q = quality(images)
                except (CheckpointError, ValueError, OSError) as err:
                    st.warning(f"Quality figures unavailable: {err}")
                    continue
                m1, m2, m3 = st.columns(3)
                m1.metric("Fréchet distance", f"{q['frechet_distance']:.1f}",
                          help="Between Gaussians fitted to the shipped classifier's features of "
                               "these samples and of the 10,000 real test digits. Lower is better; "
                               "it grows when N is small, so compare at the same N.")
                m2.metric("Mean confidence", f"{q['mean_confidence']:.2f}",
                          help="Average top-class probability of the classifier.")
                m3.metric("Classes present", f"{q['classes_present']}/10")
                st.plotly_chart(class_counts_figure(q["class_counts"]), key=f"hist_{slug}")
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
    t1, t2, t3, t4 = st.columns(4)
    objective = t1.selectbox("Objective", ["ncsn", "dsm"],
                             format_func=lambda o: {"ncsn": "NCSN (many σ)", "dsm": "single-σ DSM"}[o])
    steps = t2.number_input("Steps", 10, 200_000, 2000, step=100)
    sigma_min = t3.number_input("σ_L (smallest σ)", 0.001, 1.0, 0.01, format="%.3f")
    dsm_sigma = t4.number_input("Baseline σ (DSM)", 0.01, 5.0, 0.1, format="%.2f")
    t5, t6, t7, t8 = st.columns(4)
    sigma_max = t5.number_input("σ₁ (0 = largest pairwise distance)", 0.0, 100.0, 0.0)
    gamma_in = t6.number_input("Ratio γ (0 = overlap rule)", 0.0, 2.0, 0.0, format="%.4f")
    batch = t7.selectbox("Batch", [32, 64, 128, 256], index=1)
    minutes = t8.number_input("Stop after minutes (0 = no limit)", 0.0, 600.0, 0.0)
    submitted = st.form_submit_button("Start training")
if submitted:
    train_cfg = ImageTrainConfig(objective=objective, steps=int(steps), batch=int(batch),
                                 sigma_min=float(sigma_min), dsm_sigma=float(dsm_sigma),
                                 sigma_max=float(sigma_max) or None, gamma=float(gamma_in) or None,
                                 max_minutes=float(minutes) or None)
    if sigma_max and sigma_max <= sigma_min:
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
                                key=f"loss_{info.dir.name}")
                last = recs[-1].get("loss_per_level") or []
                try:
                    sig = read_meta(info.dir / "model")["schedule"]["sigmas"]
                except (CheckpointError, KeyError):
                    sig = list(range(1, len(last) + 1))
                per_sigma = dict(zip(sig, last))
                if any(v is not None for v in per_sigma.values()):
                    c2.plotly_chart(render_train.per_sigma_figure(
                        per_sigma, title="Loss per σ (latest records)", log_y=False, mode="markers",
                        height=180), key=f"persig_{info.dir.name}")
            preview = preview_png(info.dir)
            if preview is not None:
                c3.image(preview, caption="preview (EMA)", width=140)


training_runs()
