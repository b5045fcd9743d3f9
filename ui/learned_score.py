"""Shared by pages: choose a trained 2D score checkpoint (a Train page run) and sample with it next to
the exact score. Used by pages/langevin.py through one call, `learned_vs_exact(...)`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st
import torch

from engine.render import mixing as render
from engine.store.checkpoints import CheckpointError, load_score_fn, read_meta
from engine.lab.mixing import MixConfig, run_mix
from engine.paths import default_runs_root
from engine.store.runs import run_checkpoints
from engine.samplers.schedules import ScheduleError
from engine.samplers.langevin import SamplerDiverged

LEARNED = "#9467bd"
EXACT_ONLY = "exact score only"


def trained_checkpoints(root=None) -> dict[str, str]:
    """{checkpoint path: label} for finished 2D score runs on a Gaussian mixture, newest first."""
    found = []
    for d, meta in run_checkpoints(root or default_runs_root()):
        if meta.get("task") != "score2d" or (meta.get("target") or {}).get("data") != "mixture":
            continue
        w = (meta.get("target") or {}).get("weights") or []
        label = (f"{meta.get('objective', '?').upper()} · {meta.get('steps')} steps · weights "
                 + ", ".join(f"{v:.2f}" for v in w) + f" · {d.name[:15]}"
                 + ("" if meta.get("state") == "finished" else f" ({meta.get('state')})"))
        found.append(((d / "model.json").stat().st_mtime, str(d / "model"), label))
    return {path: label for _, path, label in sorted(found, reverse=True)}


@st.cache_resource(show_spinner=False, max_entries=8)
def _score_fn(path: str, mtime: float):
    return load_score_fn(path)


@st.cache_data(show_spinner="Sampling with the learned score…", max_entries=16)
def _sample_learned(config: MixConfig, mtime: float) -> dict:
    threads = torch.get_num_threads()
    # A 2→128→128→2 MLP on 1000 points: one thread is fastest, and several threads on a busy
    # 2-core machine were measured 10–25× slower.
    torch.set_num_threads(1)
    try:
        score_fn = _score_fn(config.checkpoint, mtime)
        r = run_mix(config, score_fn=score_fn)
    except (CheckpointError, SamplerDiverged, ScheduleError, ValueError) as err:
        return {"error": str(err)}
    finally:
        torch.set_num_threads(threads)
    return dict(x=r.sample.x.numpy(), weights=r.mode_weights, tv=r.weight_error,
                sw=r.sliced_wasserstein, seconds=r.seconds, nfe=r.sample.nfe)


def learned_vs_exact(config: MixConfig, exact: dict, *, grid: dict, lim: float, means, name: str,
                     key: str = "learned") -> None:
    """A checkpoint picker; with one chosen, the same sampler `config` is run with the learned score
    and drawn next to the exact-score result `exact` (a dict with x, weights, tv, sw)."""
    st.subheader("With a trained score")
    options = trained_checkpoints()
    if not options:
        st.caption("Train a model on the **Train** page (a Gaussian mixture) to sample with a learned "
                   "score here, next to the exact one.")
        return
    choice = st.selectbox("Score for the comparison", [EXACT_ONLY, *options], key=f"{key}_ckpt",
                          format_func=lambda p: options.get(p, p),
                          help="A checkpoint from the Train page. The sampler settings above are "
                               "used unchanged; only the score function differs.")
    if choice == EXACT_ONLY:
        return
    meta = read_meta(choice)
    target = meta.get("target") or {}
    trained_w = [round(float(v), 3) for v in target.get("weights", [])]
    page_w = [round(float(v), 3) for v in config.weights]
    trained_means = [tuple(float(v) for v in m) for m in target.get("means", [])]
    if trained_w != page_w or trained_means != [tuple(m) for m in config.means]:
        st.warning(f"This model was trained on weights {trained_w} and means {trained_means}; the "
                   f"target above differs, so the comparison is against the page's target.")
    sigmas = meta.get("sigmas") or []
    if sigmas and config.sampler == "annealed" and min(sigmas) > config.sigma_min * 1.0001:
        st.caption(f"The model saw σ ≥ {min(sigmas):.3g}; below that it is evaluated at "
                   f"σ = {min(sigmas):.3g}.")
    mtime = Path(choice).with_suffix(".json").stat().st_mtime
    learned = _sample_learned(replace(config, checkpoint=choice, record_every=0), mtime)
    if "error" in learned:
        st.error(f"Learned score: {learned['error']}")
        return
    panels = [dict(name=f"{name} · exact score", color=render.ANNEALED, points=exact["x"][:1000]),
              dict(name=f"{name} · learned ({meta.get('objective', '?').upper()})", color=LEARNED,
                   points=learned["x"][:1000])]
    st.plotly_chart(render.particles_figure(panels, grid["g"], grid["g"], grid["logp"], lo=-lim,
                                            hi=lim, means=means),
                    key=f"{key}_fig", config={"displaylogo": False})
    rows = ["| score | " + " | ".join(f"weight {i + 1}" for i in range(len(page_w)))
            + " | weight error (TV) | sliced W₂ |",
            "|---|" + "---:|" * (len(page_w) + 2),
            "| target | " + " | ".join(f"{v:.3f}" for v in page_w) + " | 0 | 0 |"]
    for label, out in (("exact", exact), ("learned", learned)):
        rows.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in out["weights"])
                    + f" | **{out['tv']:.3f}** | {out['sw']:.2f} |")
    st.markdown("\n".join(rows))
    st.caption(f"Same initial particles and noise, {learned['nfe']} evaluations of the network in "
               f"{learned['seconds'] * 1e3:.0f} ms. A learned score is least accurate where the "
               "training data were sparse — the region between the modes.")
