"""Latent scores: the score-based VAE (SEEDS.md §6). Widgets → engine.vae.views (arrays) →
engine.render.vae (figures, PNGs); training runs in the background through the job manager."""

from __future__ import annotations

import streamlit as st

from engine.render import export
from engine.render import vae as render_vae
from engine.render.images import grid_png, zip_of_pngs
from engine.store.checkpoints import CheckpointError
from engine.store.registry import modified, runs_started_with, vae_models
from engine.vae.training import VAEConfig, cli_argv
from engine.vae.views import digit_map, quick_bound, term_history, vae_view
from ui.jobs import job_manager, start_job

st.title("Latent scores: a VAE with an implicit encoder")
st.markdown(
    "An **implicit encoder** z = g_φ(x, ε) has no density formula, so the ELBO's entropy term "
    "H(q_φ(z|x)) cannot be computed. Its gradient can: "
    "∇_φ H = −E_ε[∇_z log q(z|x)ᵀ ∇_φ g_φ(x, ε)]. "
    "A score net s_ψ(z, x) ≈ ∇_z log q(z|x), trained by sliced score matching on fresh encoder "
    "samples, turns it into the surrogate **−stopgrad(s_ψ(z, x))ᵀ z** (the loss −ELBO carries "
    "+stopgrad(s)ᵀz). The baseline is the usual Gaussian encoder with its entropy in closed form. "
    "Both are scored by one estimator: an importance-sampled lower bound on log p(x) of binarised "
    "MNIST test digits (a Gaussian proposal fitted to each digit's encoder samples), in nats; "
    "higher is better.")

seed = int(st.session_state.get("seed", 0))


@st.cache_data(show_spinner="Loading the model…", max_entries=16)
def cached_view(path: str, mtime: float, n: int, seed: int):
    return vae_view(path, n=n, seed=seed)


@st.cache_data(show_spinner="Estimating the bound…", max_entries=16)
def cached_bound(path: str, mtime: float, seed: int) -> dict:
    return quick_bound(path, seed=seed)


@st.cache_data(show_spinner="Sampling the posterior…", max_entries=16)
def cached_map(path: str, mtime: float, index: int, seed: int):
    return digit_map(path, index, seed=seed)


def view_of(path: str, n: int = 16):
    try:
        return cached_view(path, modified(path), n, seed)
    except (CheckpointError, ValueError, OSError) as err:
        st.error(str(err))
        return None


models = vae_models()

# -- comparison ----------------------------------------------------------------------------------
st.subheader("Implicit vs Gaussian encoder at equal budget")
if not models:
    st.info("No VAE checkpoints yet: train one below.")
else:
    labels = list(models)
    def first(word: str, fallback: int) -> int:
        """The first label naming `word`, a latent-8 one if there is (the README's comparison)."""
        hits = [i for i, lb in enumerate(labels) if word in lb.lower()]
        return next((i for i in hits if "latent 8" in labels[i]), hits[0] if hits else fallback)

    left, right = first("implicit", 0), first("gaussian", min(1, len(labels) - 1))
    cols = st.columns(2)
    rows = []
    for col, default, side in zip(cols, (left, right), ("left", "right")):
        with col:
            label = st.selectbox("Model", labels, index=default, key=f"vae_model_{side}")
            path = models[label]
            view = view_of(path)
            if view is None:
                continue
            bound = view.bound
            if not bound and st.button("Estimate the bound (K = 100, 200 digits)", key=f"bound_{side}"):
                bound = cached_bound(path, modified(path), seed)
            if bound:
                st.metric("log p(x) ≥", f"{bound['bound']:.2f} nats",
                          help=f"± {bound['standard_error']:.2f} (standard error), K = {bound['k']} "
                               f"importance samples, {bound['digits']} test digits")
            s = view.summary
            st.caption(f"{s['encoder']} encoder · latent {s['latent']} · {s['steps']:,} steps · "
                       f"{(s['wall_time'] or 0):.0f} s")
            stein = (bound.get("elbo_terms") or {}).get("score_stein")
            if stein is not None:
                st.caption(f"Score check (Stein's identity): {stein:.2f} — 1 when s_ψ is the "
                           f"posterior's score, near 0 when the score net has lost track of it.")
            rows.append({"label": label, **s, **bound})
            pairs = render_vae.pairs_png(view.digits, view.reconstructions)
            st.image(pairs, caption="Test digits (odd rows) and reconstructions (even rows)")
            samples = grid_png(view.samples, nrow=8, scale=2)
            st.image(samples, caption="Samples from the prior: p(x|z), z ~ N(0, I) (Bernoulli means)")
            slug = label.split(" ")[0].lower().replace("/", "-")
            d1, d2, d3 = st.columns(3)
            d1.download_button("Reconstructions PNG", pairs, file_name=f"{slug}_reconstructions.png",
                               mime="image/png", key=f"dl_rec_{side}")
            d2.download_button("Samples PNG", samples, file_name=f"{slug}_samples.png",
                               mime="image/png", key=f"dl_smp_{side}")
            d3.download_button("Samples ZIP", zip_of_pngs(view.samples, "sample"),
                               file_name=f"{slug}_samples.zip", mime="application/zip",
                               key=f"dl_zip_{side}")
            if view.history:
                st.plotly_chart(render_vae.elbo_terms_figure(view.history, height=260),
                                key=f"terms_{side}", config=export.CHART_CONFIG)
    if rows:
        st.markdown(render_vae.comparison_table(rows))
        st.caption("Equal budget = the same steps and batch size. The implicit encoder's entropy "
                   "curve is a k-nearest-neighbour estimate from encoder samples; its training "
                   "only ever uses the score net's gradient.")

# -- posterior map ---------------------------------------------------------------------------------
st.subheader("One digit's posterior and its score (latent size 2)")
flat = sorted((lb for lb in models if (v := view_of(models[lb])) is not None and v.summary["latent"] == 2),
              key=lambda lb: "implicit" not in lb.lower())     # the learned score first
if not flat:
    st.info("No model with a 2-dimensional latent space yet (train one with latent 2).")
else:
    m1, m2 = st.columns([1, 3])
    label = m1.selectbox("Model", flat, key="vae_map_model")
    index = int(m1.number_input("Test digit #", 0, 999, 0, key="vae_map_digit"))
    path = models[label]
    try:
        digit, dmap = cached_map(path, modified(path), index, seed)
    except (CheckpointError, ValueError, OSError) as err:
        st.error(str(err))
    else:
        m1.image(grid_png(digit[None], scale=4), caption=f"test digit #{index} (binarised)")
        m2.plotly_chart(render_vae.latent_map_figure(dmap), key="vae_map", config=export.CHART_CONFIG)
        m2.caption("Dots: 500 encoder samples z ~ q(z|x). Arrows: "
                   + ("the learned score s_ψ(z, x) that drives the entropy gradient."
                      if dmap.learned else "the Gaussian encoder's exact score −(z − μ)/σ²."))

# -- training ------------------------------------------------------------------------------------
st.subheader("Train in the background")
with st.form("vae_train"):
    f1, f2, f3, f4 = st.columns(4)
    encoder = f1.selectbox("Encoder", ["implicit", "gaussian"], key="vae_tr_encoder")
    latent = f2.selectbox("Latent size", [2, 8, 16, 32], index=1, key="vae_tr_latent")
    steps = f3.number_input("Steps", 10, 200_000, 5000, step=500, key="vae_tr_steps")
    minutes = f4.number_input("Stop after minutes (0 = no limit)", 0.0, 600.0, 0.0,
                              key="vae_tr_minutes")
    submitted = st.form_submit_button("Start training")
if submitted:
    config = VAEConfig(encoder=encoder, latent=int(latent), steps=int(steps),
                       max_minutes=float(minutes) or None, seed=seed)
    start_job(config, cli_argv(config), name=f"vae-{encoder}-{latent}")


@st.fragment(run_every=3)
def training_runs() -> None:
    """Pick one of this page's runs and watch its ELBO terms on the test digits as it trains."""
    jobs = job_manager()
    runs = {f"{info.name} · {info.dir.name} · {info.state}": info
            for info in runs_started_with(jobs.runs(), "vae", "train")}
    if not runs:
        st.caption("No VAE training runs yet.")
        return
    info = runs[st.selectbox("Watch run", list(runs), key="vae_watch")]
    st.progress(info.progress, text=info.message or info.state)
    if info.state in ("queued", "starting", "running") and st.button("Cancel this run", key="vae_cancel"):
        jobs.cancel(info.dir)
    history = term_history(info.dir / "model")
    if history:
        st.plotly_chart(render_vae.elbo_terms_figure(history, height=260), key="vae_run_terms",
                        config=export.CHART_CONFIG)
    else:
        st.caption("The ELBO terms appear after the first evaluation (every 250 steps by default).")


training_runs()
