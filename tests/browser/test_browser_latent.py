"""Real browser: the Latent scores page opens on the shipped VAEs, and its reconstruction PNG and
prior-sample ZIP downloads decode."""

import io
import zipfile

import pytest
from PIL import Image

from engine.store.registry import shipped
from tests.browser.server import download, open_with_images

pytestmark = pytest.mark.skipif(len(shipped("vae_mnist")) < 2,
                                reason="the shipped VAE checkpoints are missing")


def test_latent_page_downloads_in_a_browser(streamlit_server, browser_page, tmp_path):
    page = browser_page
    open_with_images(page, f"{streamlit_server}/latent")
    assert page.get_by_text("log p(x) ≥").count() >= 2
    data = download(page, page.get_by_role("button", name="Reconstructions PNG").first,
                    tmp_path / "reconstructions.png")
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG" and img.size == (2 * (8 * 30 + 2), 2 * (4 * 30 + 2))
    data = download(page, page.get_by_role("button", name="Samples ZIP").first, tmp_path / "samples.zip")
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert len(names) == 16 and all(n.endswith(".png") for n in names)
