"""Real browser: the MNIST page shows the shipped grid and its PNG download decodes."""

import io

import pytest
from PIL import Image

from engine.store.registry import shipped
from tests.browser.server import download, open_with_images

pytestmark = pytest.mark.skipif(not shipped("ncsn_unet"),
                                reason="the shipped MNIST checkpoints are missing")


def test_download_grid_png_in_a_browser(streamlit_server, browser_page, tmp_path):
    page = browser_page
    open_with_images(page, f"{streamlit_server}/mnist")
    button = page.get_by_role("button", name="Download this example grid (PNG)")
    img = Image.open(io.BytesIO(download(page, button, tmp_path / "grid.png")))
    side = 3 * (8 * 30 + 2)            # 8 × 8 digits, each pixel a 3 × 3 block: ≥ 512 px for a slide
    assert img.format == "PNG" and img.size == (side, side)
