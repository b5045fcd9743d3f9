"""Shared by pages: choose a trained 2D score checkpoint (a Train page run) and sample with it next to
the exact score. Used by app_pages/langevin.py through one call, `learned_vs_exact(...)`."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from engine.lab.comparison import sample_learned, trained_target
from engine.lab.mixing import MixConfig
from engine.render import mixing as render
from engine.render.base import ANNEALED, LEARNED
from engine.render.export import CHART_CONFIG
from engine.store.registry import modified, score2d_runs

EXACT_ONLY = "exact score only"


@st.cache_data(show_spinner="Sampling with the learned score…", max_entries=16)
def _sample_learned(config: MixConfig, mtime: float) -> dict:
    """Cached by the config and the checkpoint's write time (a run that saves again resamples)."""
    return sample_learned(config)


def learned_vs_exact(config: MixConfig, exact: dict, *, grid: dict, lim: float, means, name: str,
                     key: str = "learned") -> None:
    """A checkpoint picker; with one chosen, the same sampler `config` is run with the learned score
    and drawn next to the exact-score result `exact` (engine.lab.comparison arrays)."""
    st.subheader("With a trained score")
    options = score2d_runs()
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
    config = replace(config, checkpoint=choice, record_every=0)
    trained = trained_target(config)
    if trained["differs"]:
        st.warning(f"This model was trained on weights {trained['weights']} and means "
                   f"{trained['means']}; the target above differs, so the comparison is against "
                   f"the page's target.")
    if trained["sigma_floor"] is not None:
        st.caption(f"The model saw σ ≥ {trained['sigma_floor']:.3g}; below that it is evaluated at "
                   f"σ = {trained['sigma_floor']:.3g}.")
    learned = _sample_learned(config, modified(choice))
    if "error" in learned:
        st.error(f"Learned score: {learned['error']}")
        return
    panels = [dict(name=f"{name} · exact score", color=ANNEALED, points=exact["x"][:1000]),
              dict(name=f"{name} · learned ({trained['objective'].upper()})", color=LEARNED,
                   points=learned["x"][:1000])]
    st.plotly_chart(render.particles_figure(panels, grid["g"], grid["g"], grid["logp"], lo=-lim,
                                            hi=lim, means=means),
                    key=f"{key}_fig", config=CHART_CONFIG)
    st.markdown(render.weights_table(config.weights, {"exact": exact, "learned": learned},
                                     labels=[f"weight {i + 1}" for i in range(len(config.weights))],
                                     corner="score"))
    st.caption(f"Same initial particles and noise, {learned['nfe']} evaluations of the network in "
               f"{learned['seconds'] * 1e3:.0f} ms. A learned score is least accurate where the "
               "training data were sparse — the region between the modes.")
