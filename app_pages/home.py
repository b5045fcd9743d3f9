"""Home: what Score Lab is and what each page shows."""

from pathlib import Path

import streamlit as st


ROOT = Path(__file__).resolve().parent.parent

st.title("Score Lab")
st.markdown(
    "A visual lab for **score-based generative models**. A score is the gradient of a log-density, "
    "$s(x) = \\nabla_x \\log p(x)$: it points uphill towards where the data are, and it does not "
    "need the normalising constant. Langevin dynamics turns a score into samples. Each page runs "
    "a small experiment you can change with sliders; the seed and the device in the sidebar are "
    "shared by all pages."
)

SECTIONS = [
    ("app_pages/scores.py", "Scores",
     "The exact score field of a 2D Gaussian mixture at any noise level σ, over its density. "
     "Move a mode's weight and see where the field changes: almost nowhere far from the minor "
     "mode, which is why plain Langevin dynamics gets the weights wrong."),
    ("app_pages/langevin.py", "Langevin vs annealed",
     "The seeds' experiment: 2000 particles from a uniform box, sampled from 0.8·N((5,5), I) + "
     "0.2·N((−5,−5), I) with the exact score, by plain Langevin and by annealed Langevin from the "
     "same starting points. Final particles, trajectories, an animation, and the recovered weights."),
    ("app_pages/train.py", "Train",
     "Train small score networks on 2D data with the score-matching losses (explicit, implicit, "
     "sliced, denoising, NCSN) in the background and compare them."),
    ("app_pages/mnist.py", "MNIST",
     "Noise Conditional Score Networks on real MNIST digits: single-σ DSM against NCSN with "
     "annealed Langevin."),
    ("app_pages/sde.py", "SDEs",
     "Score models through stochastic differential equations: forward and reverse SDEs, "
     "predictor–corrector sampling and the probability-flow ODE."),
    ("app_pages/latent.py", "Latent scores",
     "A score-based model in the latent space of a variational autoencoder: encode, learn the "
     "score of the latent codes, sample there and decode."),
]

for path, title, text in SECTIONS:
    if not (ROOT / path).exists():
        continue
    with st.container(border=True):
        st.page_link(path, label=f"**{title}**", icon=":material/arrow_forward:")
        st.markdown(text)
