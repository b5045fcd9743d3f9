"""Score Lab: `streamlit run app.py`. Navigation, and the sidebar controls every page shares."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.device import available_devices
from ui import gc_pauses, url_state

ROOT = Path(__file__).resolve().parent

# (file, title, icon). Pages whose file is not there (yet) are left out, so the app always runs.
# The folder is app_pages/, not pages/: a pages/ folder beside app.py puts Streamlit in its legacy
# multipage mode, where a page URL opened before any st.navigation call runs that page on its own
# (no sidebar, an automatic page list). Without one, every request runs this file.
PAGES = [
    ("app_pages/home.py", "Home", ":material/home:"),
    ("app_pages/scores.py", "Scores", ":material/explore:"),
    ("app_pages/langevin.py", "Langevin vs annealed", ":material/scatter_plot:"),
    ("app_pages/train.py", "Train", ":material/model_training:"),
    ("app_pages/mnist.py", "MNIST", ":material/draw:"),
    ("app_pages/sde.py", "SDEs", ":material/timeline:"),
    ("app_pages/latent.py", "Latent scores", ":material/blur_on:"),
]

st.set_page_config(page_title="Score Lab", page_icon=":material/scatter_plot:", layout="wide")

pages = [st.Page(path, title=title, icon=icon, default=(path == "app_pages/home.py"))
         for path, title, icon in PAGES if (ROOT / path).exists()]
current = st.navigation(pages)
st.session_state["_page_path"] = current.url_path  # for ui.url_state.link()

with st.sidebar:
    st.markdown("### Score Lab")
    # Defined here (not in a page) so the values survive page switches.
    url_state.number_input("Seed", 0, 2**31 - 1, 0, 1, key="seed",
                           help="Every random draw (initial particles, Langevin noise, training) "
                                "uses it: the same seed and sliders give the same picture.")
    devices = available_devices()
    st.selectbox("Device", devices, index=0, key="device",
                 help="Where networks train and sample. Exact-score samplers on 2D mixtures run "
                      "on the CPU: their tensors are tiny.")

current.run()
# A page's first run imports most of what the process will hold (torch, plotly, …): freeze it out
# of the garbage collector's full passes, which otherwise cost ~200 ms in a slider move.
gc_pauses.freeze_after_imports()
