"""Scores: the exact score field of a 2D Gaussian mixture at a noise level σ, and how little of it
changes when a mode's weight changes."""

from __future__ import annotations

import streamlit as st

from engine.lab.grids import probe_curves, score_field
from engine.render import mixing as render
from engine.render.base import ANNEALED, PLAIN
from engine.targets import TargetError

from ui import url_state


# Cached per slider setting; the probes depend on σ only, so moving w does not recompute them.
field = st.cache_data(max_entries=64, show_spinner=False)(score_field)
probes = st.cache_data(max_entries=64, show_spinner=False)(probe_curves)


st.title("Scores")
st.markdown(
    "The **score** of a density is the vector field $\\nabla_x \\log p(x)$. Here $p$ is a mixture of "
    "two unit Gaussians at $(5,5)$ (weight $w$) and $(-5,-5)$ (weight $1-w$), perturbed by "
    "Gaussian noise of size $\\sigma$, so the field is exact. Left: the field over the "
    "log-density. Right: how much the field changes when the weight goes from $w$ to $w'$."
)

HEAT_N = 61   # heat-map grid per side (the browser smooths it; 101 sent 2.7× the bytes)
ARROW_N = 15  # arrows per side
PROBE_WEIGHTS = 41  # weights along the probe curves (smooth in w; each is one score evaluation)


@st.fragment
def lab() -> None:
    """Controls and the figures they change: a slider reruns only this (st.fragment)."""
    c1, c2, c3, c4 = st.columns(4)
    sigma = url_state.slider("Noise level σ", 0.0, 20.0, 0.0, 0.25, key="scores_sigma", where=c1,
                             help="The field of p_σ = p convolved with N(0, σ² I).")
    w = url_state.slider("Weight w of the mode at (5, 5)", 0.01, 0.99, 0.8, 0.01, key="scores_w",
                         where=c2)
    w_other = url_state.slider("Compare with weight w′", 0.01, 0.99, 0.5, 0.01, key="scores_w2",
                               where=c3)
    view = url_state.radio("Colour shows", ["log-density", "energy −log p"], "log-density",
                           horizontal=True, key="scores_view", where=c4)
    with c4:
        url_state.copy_link()

    try:
        data = field(w, w_other, 5.0, sigma, heat_n=HEAT_N, arrow_n=ARROW_N)
    except TargetError as err:  # cannot happen with these sliders, but never show a traceback
        st.error(str(err))
        return

    probe = probes(5.0, sigma, n_weights=PROBE_WEIGHTS)
    if view.startswith("energy"):
        shown, z_title, scale = -data["logp"], "−log p", "Viridis_r"
    else:
        shown, z_title, scale = data["logp"], "log p", "Viridis"

    left, right = st.columns(2)
    with left:
        st.plotly_chart(
            render.field_figure(data["gx"], data["gx"], shown, data["arrows_at"], data["arrows"],
                                title=f"Score ∇log p_σ at σ = {sigma:g}, w = {w:.2f}", z_title=z_title,
                                colorscale=scale, means=data["means"]),
            key="scores_field", config={"displaylogo": False})
    with right:
        st.plotly_chart(
            render.field_figure(data["gx"], data["gx"], data["diff"], data["arrows_at"],
                                data["arrows_diff"], title=f"How far the score moves: weight {w:.2f} → {w_other:.2f}",
                                z_title="|Δ score|", colorscale="Reds", means=data["means"],
                                arrow_color="#08306b"),
            key="scores_diff", config={"displaylogo": False})

    m1, m2 = st.columns([1, 2])
    m1.metric("Area where the field moved > 1 %", f"{100 * data['changed']:.1f} %",
              help="Share of the 20×20 box where |s_w − s_w′| > 0.01·|s_w|.")
    m2.markdown(
        "At **σ = 0** the two fields agree almost everywhere: only a thin band between the modes "
        "(where neither component dominates) moves. Raise **σ** and the components overlap, so "
        "the weight is felt across the whole plane."
    )

    st.plotly_chart(
        render.line_figure(probe["ws"], probe["curves"],
                           title=f"Score along the diagonal at three probe points, as w varies (σ = {sigma:g})",
                           x_title="weight w of the mode at (5, 5)",
                           y_title="score along the diagonal", vline=w,
                           colors=dict(zip(probe["curves"], [ANNEALED, "#7f7f7f", PLAIN]))),
        key="scores_probe", config={"displaylogo": False})


lab()

st.subheader("What to look for, and why")
st.markdown("For a mixture perturbed by $\\mathcal N(0, \\sigma^2 I)$ every component widens "
            "by $\\sigma^2$, and the score is a responsibility-weighted sum of the components' scores:")
st.latex(r"\nabla_x \log p_\sigma(x) = \sum_k r_k(x)\,\frac{-(x-\mu_k)}{1+\sigma^2},\qquad "
         r"r_k(x) = \frac{w_k\,\mathcal N(x;\mu_k,(1+\sigma^2)I)}{\sum_j w_j\,\mathcal N(x;\mu_j,(1+\sigma^2)I)}.")
st.markdown(
    "The weights $w_k$ enter **only through** $r_k$. Near a mode one component dominates, "
    "$r_k \\approx 1$, and the score is $-(x-\\mu_k)/(1+\\sigma^2)$ whatever the weights are: "
    "the blue and red probe curves are flat. Only where the components compete "
    "(the grey probe, midway) does the weight change the field. Langevin dynamics only follows "
    "the score, so a particle that starts near the minor mode stays there, and the share of "
    "particles in each mode reflects where they started, not $w$. With a large $\\sigma$ the "
    "components overlap everywhere, $r_k$ depends on $w$ across the plane, and that is what "
    "annealed Langevin uses: see the *Langevin vs annealed* page."
)
