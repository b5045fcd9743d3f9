"""Real browser: the Latent scores page opens on the shipped VAEs, and its reconstruction PNG and
prior-sample ZIP downloads decode."""

import io
import zipfile

import pytest
from PIL import Image

from engine.store.registry import shipped
from tests.browser.server import wait_idle

pytestmark = pytest.mark.skipif(len(shipped("vae_mnist")) < 2,
                                reason="the shipped VAE checkpoints are missing")


def test_latent_page_downloads_in_a_browser(streamlit_server, browser_page, tmp_path):
    page = browser_page
    page.goto(f"{streamlit_server}/latent")
    wait_idle(page, timeout_ms=120_000)
    page.wait_for_selector("[data-testid='stImage'] img", timeout=60_000)
    assert page.get_by_text("log p(x) ≥").count() >= 2
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name="Reconstructions PNG").first.click()
    path = tmp_path / "reconstructions.png"
    info.value.save_as(path)
    img = Image.open(io.BytesIO(path.read_bytes()))
    assert img.format == "PNG" and img.size == (2 * (8 * 30 + 2), 2 * (4 * 30 + 2))
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name="Samples ZIP").first.click()
    path = tmp_path / "samples.zip"
    info.value.save_as(path)
    names = zipfile.ZipFile(path).namelist()
    assert len(names) == 16 and all(n.endswith(".png") for n in names)
