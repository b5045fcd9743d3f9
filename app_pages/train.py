"""Train: learn a 2D score with any score-matching objective, in the background, and compare it with
the exact score. Training runs as `python -m engine train2d …` subprocesses (engine.store.jobs); this page
only submits them and reads their run folders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from engine.lab.learned2d import (PointsError, comparison_rows, cost_per_step, learned_field, preview,
                                  points_from_csv, sigma_rule, weights_check)
from engine.render import train as render_train
from engine.render.base import markdown_table
from engine.render.export import CHART_CONFIG
from engine.render.mixing import weights_table
from engine.store.checkpoints import CheckpointError, read_meta
from engine.store.jobs import JobManager
from engine.store.registry import loss_records, modified, runs_started_with
from engine.targets import SAMPLE_SETS
from engine.training.toy2d import MAX_POINTS, POINTS_RANGE, Train2DConfig, cli_argv

from ui import url_state
from ui.jobs import job_manager


OBJECTIVES = {
    "ncsn": "NCSN — multi-σ denoising, λ(σ) = σ²",
    "dsm": "DSM — denoising at one σ",
    "ssm-vr": "SSM-VR — sliced, variance reduced",
    "ssm": "SSM — sliced",
    "ism": "ISM — implicit, exact Jacobian trace",
    "esm": "ESM — explicit (needs the exact score)",
}
DATA = {"mixture": "Gaussian mixture (exact score known)", "points": "your own points (draw or upload)",
        **{k: k for k in SAMPLE_SETS}}
ACTIVE = ("queued", "starting", "running")
DEFAULTS = Train2DConfig()
WIDTHS = {"1 / 1 / 1": (1.0, 1.0, 1.0), "0.5 / 1 / 1.5": (0.5, 1.0, 1.5), "1.5 / 1 / 0.5": (1.5, 1.0, 0.5),
          "0.5 / 0.5 / 0.5": (0.5, 0.5, 0.5), "2 / 2 / 2": (2.0, 2.0, 2.0)}
MANIFOLD_TAG = "manifold-experiment"
COMPARE_COLUMNS = {"run": ("run", "{}"), "objective": ("objective", "{}"), "data": ("data", "{}"),
                   "steps": ("steps", "{}"), "fisher": ("Fisher (data)", "{:.4g}"),
                   "fisher_floor": ("bias floor", "{:.3g}"),
                   "loss": ("final loss", "{:.4g}"), "sec_per_step": ("s / step", "{:.2g}"),
                   "wall_time": ("wall time (s)", "{:.1f}")}


def jobs() -> JobManager:
    return job_manager()


@st.cache_data(show_spinner=False, max_entries=16)
def field_view(path: str, sigma: float, mtime: float) -> dict:
    """The learned (and exact) field as arrays, cached until the run saves its model again."""
    return learned_field(path, sigma)


@st.cache_data(show_spinner=False, max_entries=8)
def preview_view(path: str, mtime: float) -> dict:
    """A running job's latest checkpoint: samples and field (recomputed when it saves again)."""
    return preview(path)


@st.cache_data(show_spinner="Sampling with the learned and the exact score…", max_entries=8)
def weights_view(path: str, mtime: float) -> dict:
    """`mix --sampler annealed --checkpoint PATH` next to the exact score, once per checkpoint."""
    return weights_check(path)


sigma_rule = st.cache_data(show_spinner=False, max_entries=16)(sigma_rule)
cost_experiment = st.cache_data(show_spinner="Timing one training step per objective and dimension…",
                                max_entries=4)(cost_per_step)


def train_runs() -> list:
    return runs_started_with(jobs().runs(), "train2d")


def run_label(info) -> str:
    cfg = info.config.get("config", {})
    obj = cfg.get("objective", "?")
    name = "" if info.name == obj else f"{info.name} · "
    return f"{name}{obj.upper()} on {cfg.get('data', '?')} · {info.dir.name[:15]}"


def run_data(info) -> list:
    """A run's own training points (--data points), [] for other data."""
    cfg = info.config.get("config", {})
    return cfg.get("points") or [] if cfg.get("data") == "points" else []


def add_selection(chart_key: str) -> None:
    """Canvas callback: the box/lasso-selected grid dots become data points; the chart
    then gets a fresh key, so its selection is cleared for the next stroke."""
    selection = (st.session_state.get(chart_key) or {}).get("selection") or {}
    drawn = st.session_state.setdefault("tr_points", [])
    known, before = set(drawn), len(drawn)
    for pt in selection.get("points", []):
        xy = (round(float(pt["x"]), 3), round(float(pt["y"]), 3))
        if pt.get("curve_number", 0) == 0 and xy not in known and len(drawn) < MAX_POINTS:
            drawn.append(xy)
            known.add(xy)
    if len(drawn) > before:
        st.session_state.setdefault("tr_strokes", []).append(len(drawn) - before)
    st.session_state["tr_canvas_n"] = st.session_state.get("tr_canvas_n", 0) + 1


def points_editor() -> list:
    """Draw (drag a box or a lasso over the canvas's dots) or upload a CSV: the points to train on."""
    drawn = st.session_state.setdefault("tr_points", [])
    left, right = st.columns([3, 2])
    with left:
        key = f"tr_canvas_{st.session_state.get('tr_canvas_n', 0)}"
        st.plotly_chart(render_train.canvas_figure(drawn), key=key, on_select=lambda: add_selection(key),
                        selection_mode=("points", "box", "lasso"), config=CHART_CONFIG)
    with right:
        st.markdown("**Your data**")
        st.caption("Drag a box over the grey dots to add them (a small box around one dot adds one "
                   "point), or pick the lasso in the chart's toolbar to draw a shape; each stroke "
                   "adds to the set. Or upload a CSV with two columns "
                   f"x, y (a header line is fine; at most {MAX_POINTS} points, coordinates within "
                   f"±{POINTS_RANGE:g}).")
        upload = st.file_uploader("CSV of points", type=["csv", "txt"], key="tr_upload",
                                  max_upload_size=1)   # MB, refused by the browser; 200 kB checked here
        if upload is not None and st.session_state.get("tr_uploaded") != upload.file_id:
            try:
                drawn[:] = [tuple(p) for p in points_from_csv(upload.getvalue())]
            except PointsError as err:
                st.error(str(err))
            else:
                st.session_state["tr_uploaded"] = upload.file_id
                st.session_state["tr_strokes"] = [len(drawn)]
                st.rerun()
        strokes = st.session_state.setdefault("tr_strokes", [])
        b1, b2 = st.columns(2)
        if b1.button("Undo last stroke", key="tr_undo", disabled=not (drawn and strokes)):
            del drawn[len(drawn) - strokes.pop():]
            st.rerun()
        if b2.button("Clear", key="tr_clear", disabled=not drawn):
            drawn.clear()
            strokes.clear()
            st.rerun()
        st.caption(f"{len(drawn)} points. Training draws its batches from exactly these points; NCSN's "
                   "smallest σ sets how smooth the learned density is around them.")
    return drawn


def submit(config: Train2DConfig, name: str, tag: str | None = None) -> Path:
    extra = {"tag": tag} if tag else {}
    return jobs().submit(cli_argv(config), name=name, config={**config.to_dict(), **extra})


# -- page -------------------------------------------------------------------------------------------

st.title("Train a score model")
st.markdown(
    "Train a small network $s_\\theta$ on 2D data with any score-matching objective. Training runs "
    "in the **background** (one process per run, started with the same command as "
    "`python -m engine train2d`): the page stays usable, a reload or a server restart finds the runs "
    "again, and when the machine is busy new runs wait as *queued*. Trained models can be used on "
    "the **Langevin** page instead of the exact score."
)

seed = int(st.session_state.get("seed", 0))

with st.container(border=True):
    # Not an st.form: the fields follow the chosen data and objective (only those used are shown).
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        st.markdown("**Data**")
        data = url_state.selectbox("Data", list(DATA), "mixture", format_func=DATA.get, key="tr_data")
        w, a, w3, widths = 0.8, 5.0, 0.0, WIDTHS["1 / 1 / 1"]
        if data == "mixture":
            w = url_state.slider("Weight of the mode at (a, a)", 0.05, 0.95, 0.8, 0.05, key="tr_w",
                                 help="The mode at (−a, −a) gets 1 − w; with a third mode of weight "
                                      "w₃ the first two share 1 − w₃ in the ratio w : 1 − w.")
            a = url_state.slider("Mode position a", 1.0, 7.0, 5.0, 0.5, key="tr_a")
            if url_state.checkbox("A third mode at (a, −a)", False, key="tr_three"):
                w3 = url_state.slider("Its weight w₃", 0.05, 0.9, 0.2, 0.05, key="tr_w3")
            widths = WIDTHS[url_state.selectbox("Mode widths (std)", list(WIDTHS), "1 / 1 / 1",
                                                key="tr_widths",
                                                help="Standard deviations of the modes at (a, a), "
                                                     "(−a, −a) and (a, −a).")]
        perturb = url_state.select_slider("Perturb data with N(0, τ²), τ =", [0.0, 0.001, 0.01, 0.05, 0.1],
                                          0.0, key="tr_perturb",
                                          help="A tiny Gaussian perturbation gives data on a curve a "
                                               "density (seed 004: τ = 0.01, i.e. variance 0.0001).")
    with c2:
        st.markdown("**Objective**")
        objective = url_state.selectbox("Objective", list(OBJECTIVES), "ncsn", format_func=OBJECTIVES.get,
                                        key="tr_objective")
        projection, n_proj, conditioning = "gaussian", 1, "embed"
        if objective.startswith("ssm"):
            projection = url_state.selectbox("Projections v", ["gaussian", "rademacher"], "gaussian",
                                             key="tr_proj")
            n_proj = url_state.slider("Projections per point", 1, 8, 1, key="tr_nproj")
        if objective == "ncsn":
            conditioning = url_state.selectbox(
                "σ conditioning", ["embed", "divide"], "embed", key="tr_cond",
                format_func={"embed": "learned σ embedding (then ÷σ)", "divide": "seeds: network ÷ σ"}.get)
    with c3:
        sigma, sigma_max, sigma_min, levels = 1.0, 20.0, 1.0, 10
        if objective == "dsm":
            st.markdown("**Noise level**")
            sigma = url_state.number_input("σ", 0.01, 20.0, 1.0, 0.1, key="tr_sigma")
        elif objective == "ncsn":
            st.markdown("**Noise levels**")
            sigma_max = url_state.number_input("σ_max (σ_1)", 0.1, 100.0, 20.0, 1.0, key="tr_smax")
            sigma_min = url_state.number_input("σ_min (σ_L)", 0.01, 10.0, 1.0, 0.1, key="tr_smin")
            levels = url_state.slider("Levels L", 2, 30, 10, key="tr_levels")
        else:
            st.caption("This objective has no noise level: it matches the score of the data itself.")
    with c4:
        st.markdown("**Network and optimiser**")
        hidden = url_state.select_slider("Hidden width", [32, 64, 128, 256], 128, key="tr_hidden")
        depth = url_state.slider("Hidden layers", 1, 4, 2, key="tr_depth")
        steps = url_state.select_slider("Steps", [200, 500, 1000, 2000, 3000, 5000, 10000, 20000],
                                        DEFAULTS.steps, key="tr_steps")
        batch = url_state.select_slider("Batch size", [32, 64, 128, 256, 512], DEFAULTS.batch,
                                        key="tr_batch")
        lr = url_state.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3], DEFAULTS.lr, key="tr_lr")
        ema = url_state.select_slider("EMA of the weights", [0.0, 0.99, 0.999], DEFAULTS.ema, key="tr_ema",
                                      help="What is saved and sampled: an exponential moving average "
                                           "of the weights (0: the last step's). It removes most of "
                                           "the run-to-run spread of the recovered weights.")
    points = points_editor() if data == "points" else []
    b1, b2 = st.columns([1, 4])
    started = b1.button("Train", type="primary", key="tr_start")
    with b2:
        url_state.copy_link()

means = ((a, a), (-a, -a), (a, -a)) if w3 else ((a, a), (-a, -a))
weights = tuple(round(v, 6) for v in ((1 - w3) * w, (1 - w3) * (1 - w), w3)[:len(means)])
stds = widths[:len(means)] if any(s != 1.0 for s in widths[:len(means)]) else None   # None: unit
if data == "mixture" and w3:
    st.caption("Mixture weights " + " / ".join(f"{v:.3g}" for v in weights) + ", widths "
               + " / ".join(f"{v:g}" for v in widths) + ".")
if objective == "ncsn" and (data != "points" or len(points) > 1):
    st.caption(f"NCSNv2 rule for this data: σ_1 ≈ largest pairwise distance = "
               f"{sigma_rule(data, means, weights, tuple(points), stds):.3g}.")

if started:
    config = Train2DConfig(data=data, means=means, weights=weights, stds=stds, objective=objective,
                           steps=int(steps), batch=int(batch), lr=float(lr), hidden=int(hidden),
                           depth=int(depth), ema=float(ema), conditioning=conditioning,
                           sigma=float(sigma),
                           sigma_max=float(sigma_max), sigma_min=float(sigma_min), levels=int(levels),
                           projection=projection, n_projections=int(n_proj), perturb=float(perturb),
                           seed=seed, points=tuple(points) if data == "points" else None)
    try:
        config.validate()
        run_dir = submit(config, name=objective)   # QueueFull (a ValueError) when the queue is full
    except ValueError as err:
        st.error(str(err))
    else:
        st.session_state["tr_selected"] = str(run_dir)
        st.success(f"Started {run_dir.name}.")


def live_preview(info) -> None:
    """What a running job has learned so far: samples and field of its latest checkpoint."""
    model = str(info.dir / "model")
    pv = preview_view(model, modified(model))
    if "error" in pv:
        st.caption(f"Preview of the latest checkpoint: {pv['error']}")
        return
    st.plotly_chart(render_train.preview_figure(pv), key=f"tr_preview_{info.dir.name}",
                    config=CHART_CONFIG)
    text = ("Watching it learn: 500 particles of a short annealed Langevin run (20 steps per level) "
            "with the latest checkpoint, and its field at its smallest σ"
            + (" next to the exact one" if "exact" in pv["field"] else " over the training data")
            + f"; redrawn each time the run saves (every "
              f"{info.config.get('config', {}).get('checkpoint_every', '?')} steps).")
    if "mode_weights" in pv:
        text += (" Weights so far: " + ", ".join(f"{w:.2f}" for w in pv["mode_weights"])
                 + " (target " + ", ".join(f"{w:.2f}" for w in pv["target_weights"]) + ").")
    st.caption(text)


def runs_panel() -> None:
    """Progress, live loss and cancel for the newest runs; redrawn on its own every 2 s while a run
    is active. When a run finishes, the whole page reruns once so the sections below include it."""
    runs = train_runs()
    if not runs:
        st.caption("No training runs yet: choose settings above and press **Train**.")
        return
    active = [r for r in runs if r.state in ACTIVE]
    previewed = False
    st.caption(f"{len(active)} active · {len(runs)} runs in {jobs().root} · at most "
               f"{jobs().max_running} run at once, the rest wait as queued.")
    for info in runs[:4]:
        with st.container(border=True):
            h1, h2 = st.columns([5, 1])
            if info.state in ACTIVE and h2.button("Cancel", key=f"tr_cancel_{info.dir.name}"):
                info = jobs().cancel(info.dir)  # the worker saves its model and stops within a step
            h1.markdown(f"**{run_label(info)}** — `{info.state}`")
            sps = info.status.get("sec_per_step")
            text = f"{info.state}: step {info.step}/{info.total or '?'}"
            if sps:
                text += f" · {sps * 1000:.1f} ms/step"
                if info.state == "running" and info.total:
                    text += f" · ~{(info.total - info.step) * sps:.0f} s left"
            if info.message:
                text += f" · {info.message}"
            st.progress(info.progress, text=text)
            if info.state == "queued":
                busy = [r.name for r in jobs().runs() if r.state in ("starting", "running")]
                st.caption(f"Waiting for a free slot ({jobs().max_running} at a time); running now: "
                           f"{', '.join(busy) or 'nothing'} — cancel one to start this sooner.")
            recs = loss_records(info.dir)
            own = run_data(info)
            cols = st.columns([3, 2]) if own else [st.container()]
            if recs:
                objective = info.config.get("config", {}).get("objective", "")
                curve = render_train.loss_curve(recs, objective or "loss", objective=objective)
                cols[0].plotly_chart(render_train.loss_figure([curve], title="Loss", height=190),
                                     key=f"tr_loss_{info.dir.name}", config=CHART_CONFIG)
            if own:
                cols[1].plotly_chart(render_train.points_figure(own, f"Your data · {len(own)} points"),
                                     key=f"tr_data_{info.dir.name}", config=CHART_CONFIG)
            if info.state == "running" and info.checkpoint is not None and not previewed:
                live_preview(info)      # the newest running run only: one short sampling per save
                previewed = True
    # Last (after any Cancel click was handled): a run that just ended → rerun the whole page once.
    was_active = st.session_state.get("tr_active", set())
    now_active = {str(r.dir) for r in train_runs() if r.state in ACTIVE}
    st.session_state["tr_active"] = now_active
    if was_active - now_active:
        st.rerun()


st.subheader("Runs")
_active_now = any(r.state in ACTIVE for r in train_runs())
st.fragment(run_every=2 if _active_now else None)(runs_panel)()

def recovered_weights(model: str) -> None:
    """The weights annealed Langevin recovers with this model next to the exact score's: the
    `python -m engine mix --sampler annealed --checkpoint RUN/model` numbers."""
    out = weights_view(model, modified(model))
    if "error" in out:
        st.caption(f"Recovered weights: {out['error']}")
        return
    st.markdown("**Recovered weights** — annealed Langevin with the sampler's defaults (σ 20 → 1, "
                "10 levels, 100 steps each, ε = 0.1, 1000 particles), same start and noise for both "
                "scores\n\n" + weights_table(out["target"], {"exact score": out["exact"],
                                                             "learned": out["learned"]},
                                              labels=[f"weight {i + 1}" for i in range(len(out["target"]))],
                                              corner="score"))
    st.caption(f"The same numbers as `python -m engine mix --sampler annealed --checkpoint "
               f"{model}`. The exact score's own error is the sampler's: 100 steps per level do "
               "not fully mix between the modes while they separate.")


# -- inspect one run: learned vs exact ----------------------------------------------------------------
def inspect_run() -> None:
    """The chosen run's learned field next to the exact one. While a run is active this reruns on
    its own every 3 s, so a running job's newest checkpoint shows up here as it saves (each field
    is cached by the checkpoint's write time)."""
    st.subheader("Learned vs exact score")
    done = {str(r.dir): r for r in train_runs() if r.checkpoint is not None}
    if not done:
        st.info("A run's model appears here once it has saved a checkpoint.")
        return
    if st.session_state.get("tr_selected") in done:   # a run just started here, now with a model
        st.session_state["tr_inspect"] = st.session_state.pop("tr_selected")
    pick = st.selectbox("Run", list(done), key="tr_inspect",
                        format_func=lambda k: run_label(done[k]) + ("" if done[k].state == "finished"
                                                                    else f" ({done[k].state})"))
    model = str(Path(pick) / "model")
    try:
        meta = read_meta(model)
    except (CheckpointError, OSError) as err:
        st.error(str(err))
        return
    sigmas = [float(s) for s in meta.get("sigmas") or []]
    if len(sigmas) > 1:
        view_sigma = st.select_slider("σ to compare at", sigmas[::-1], value=sigmas[-1],
                                      format_func=lambda s: f"{s:.3g}", key="tr_view_sigma")
    else:
        view_sigma = sigmas[0] if sigmas else 0.0
        st.caption(f"This {meta.get('objective', '').upper()} model estimates the score at "
                   f"σ = {view_sigma:g}" + (" (the clean data)." if not sigmas else "."))
    try:
        cmp = field_view(model, view_sigma, modified(model))
    except (CheckpointError, OSError) as err:
        st.error(str(err))
        return
    if "exact" not in cmp:
        st.plotly_chart(render_train.fields_figure(cmp, data_points=cmp["data_points"]),
                        key="tr_fields", config=CHART_CONFIG)
        st.caption("No exact score for this data set: the learned field is drawn over the data. "
                   "Fisher divergences need a Gaussian mixture.")
        return
    st.plotly_chart(render_train.fields_figure(cmp), key="tr_fields", config=CHART_CONFIG)
    metrics = meta.get("metrics") or {}
    c1, c2, c3 = st.columns(3)
    if metrics.get("fisher") is not None:
        floor = metrics.get("fisher_floor")
        c1.metric("Fisher divergence under the data", f"{metrics['fisher']:.4g}",
                  help="½ E_p‖s_θ(x, σ_min) − ∇log p(x)‖² on 2000 held-out points."
                       + (f" The exact noisy score ∇log p_σ at this σ scores {floor:.3g}: "
                          "that much is the bias of learning a noisy score." if floor else ""))
    c2.metric("Final loss", f"{metrics.get('loss', float('nan')):.4g}")
    c3.metric("Seconds per step", f"{meta.get('sec_per_step', float('nan')):.3g}")
    st.caption("The error map is the seeds' point made by your own run: the learned score is "
               "accurate where the data are (inside the contours) and wrong in low-density "
               "regions, where there were few training points. At large σ the noisy data "
               "fill the plane and the error shrinks — why annealing works.")
    if len(metrics.get("fisher_sigma") or {}) > 1:
        st.plotly_chart(render_train.fisher_sigma_figure(metrics["fisher_sigma"]),
                        key="tr_fisher_sigma", config=CHART_CONFIG)
    if len(sigmas) < 2:
        return
    if done[pick].state in ACTIVE:
        st.caption("Recovered weights are sampled once the run ends (a sampling per checkpoint "
                   "would slow it down); the preview under **Runs** shows the weights so far.")
    else:
        recovered_weights(model)


st.fragment(run_every=3 if _active_now else None)(inspect_run)()

# -- compare runs across objectives -----------------------------------------------------------------
st.subheader("Compare objectives")
rows = comparison_rows(train_runs())
if rows:
    # A Markdown table: st.dataframe needs pyarrow, whose installed build wants NumPy 2.
    st.markdown(markdown_table(rows, COMPARE_COLUMNS))
    if any(r.get("fisher") is not None for r in rows):
        st.plotly_chart(render_train.comparison_figure(rows), key="tr_compare", config=CHART_CONFIG)
    st.caption("Fisher divergence compares each model with the exact score of the clean data at "
               "the smallest σ it knows: ESM/ISM/SSM aim at the clean score; DSM and NCSN learn the "
               "score of noisy data, a bias that grows with σ. Losses of different objectives are on "
               "different scales (ISM/SSM are the Fisher divergence minus a constant, so negative).")
else:
    st.caption("Finished runs appear here; train the same data with several objectives to compare.")

# -- seed experiments ------------------------------------------------------------------------------
st.subheader("Seed experiments")
tab_a, tab_b = st.tabs(["(a) Exact trace vs sliced vs denoising: cost with dimension",
                        "(b) Sliced score matching on a curve"])
with tab_a:
    st.markdown("Implicit score matching needs the trace of the Jacobian $\\nabla_x s_\\theta$: one "
                "backward pass per dimension. Sliced score matching needs one Hessian–vector product, "
                "denoising none. One training step of the same MLP (width 128, batch 128) on "
                "$d$-dimensional Gaussian data, median of a few steps:")
    dims = st.multiselect("Dimensions", [2, 8, 32, 64, 128, 256], default=[2, 8, 32, 128],
                          key="tr_dims")
    if st.button("Measure", key="tr_measure"):
        st.session_state["tr_cost_dims"] = tuple(sorted(dims))
    cost_dims = st.session_state.get("tr_cost_dims")
    if cost_dims:
        rows_a = cost_experiment(cost_dims, 3)
        st.plotly_chart(render_train.cost_figure(rows_a), key="tr_cost", config=CHART_CONFIG)
        objs = list(dict.fromkeys(r["objective"] for r in rows_a))
        table_a = [{"dim": d, **{o: r["sec_per_step"] for o in objs for r in rows_a
                                 if r["dim"] == d and r["objective"] == o}} for d in cost_dims]
        st.markdown(markdown_table(
            table_a, {"dim": ("d", "{}"), **{o: (f"{o.upper()} s/step", "{:.2g}") for o in objs}}))
with tab_b:
    st.markdown("Data lying exactly on a curve have no density in 2D, so the score is undefined off "
                "the curve and sliced score matching has no minimum: the network can keep sharpening "
                "its field onto the curve, and the loss keeps falling with growing fluctuations. "
                "Perturbing the data by a small $\\mathcal N(0, \\tau^2 I)$ gives a proper density "
                "whose loss has a floor, about $-\\tfrac{1}{2}E\\|\\nabla\\log p_\\tau\\|^2 "
                "\\approx -1/(2\\tau^2)$ (the normal direction), and it converges there. Seed 004 used "
                "$\\tau = 0.01$ on CIFAR-10; in 2D that floor (≈ −5000) lies beyond a few thousand "
                "steps, so $\\tau = 0.1$ (floor ≈ −50) shows the contrast within a minute.")
    b1, b2 = st.columns(2)
    b_steps = b1.select_slider("Steps", [1000, 2000, 3000, 5000], value=3000, key="tr_b_steps")
    b_tau = b2.select_slider("Perturbation τ", [0.01, 0.05, 0.1, 0.2], value=0.1, key="tr_b_tau")
    if st.button("Run both", key="tr_manifold"):
        base = Train2DConfig(data="curve", objective="ssm", steps=int(b_steps), seed=seed)
        try:
            for tau in (0.0, float(b_tau)):
                submit(replace(base, perturb=tau), name=f"ssm-curve-tau{tau:g}", tag=MANIFOLD_TAG)
        except ValueError as err:   # QueueFull
            st.error(str(err))
        else:
            st.success("Started both runs (they appear under Runs above; the second waits for the "
                       "first when only one can run at a time).")
    pair = [r for r in train_runs() if r.config.get("config", {}).get("tag") == MANIFOLD_TAG][:2]
    if pair:
        curves = []
        for r in pair:
            tau = r.config["config"].get("perturb", 0.0)
            curves.append(render_train.loss_curve(
                loss_records(r.dir), f"τ = {tau:g}" + (" (on the curve)" if not tau else " (perturbed)")
                + f" — {r.state}", color="#d62728" if not tau else "#1f77b4"))
        st.plotly_chart(render_train.loss_figure(curves, title="SSM loss on data on a curve"),
                        key="tr_manifold_chart", config=CHART_CONFIG)
