"""Your own data in a real browser: draw points on the Train page's canvas (a box over its dots),
train briefly, and see the run listed with the drawn data; the live preview and the screenshots
that check how the page looks (written to $SCORELAB_SHOTS when set)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.browser.server import wait_idle   # the fixtures come from tests/conftest.py (one Playwright per session)

SHOTS = os.environ.get("SCORELAB_SHOTS")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def drawn_count(page) -> int | None:
    for text in page.locator("[data-testid='stCaptionContainer']").all_inner_texts():
        if "points. Training draws" in text:
            return int(text.split()[0])
    return None


def drag_box(page, chart, frm: tuple[float, float], to: tuple[float, float]) -> None:
    """Drag the box-select tool over the chart's plot area between two fractions of it."""
    area = chart.locator(".nsewdrag").first.bounding_box()
    x0, y0 = area["x"] + area["width"] * frm[0], area["y"] + area["height"] * frm[1]
    x1, y1 = area["x"] + area["width"] * to[0], area["y"] + area["height"] * to[1]
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * i / 10)
    page.mouse.up()
    wait_idle(page, timeout_ms=60_000)


def test_draw_points_train_on_them_and_see_the_run_with_its_data(browser_page, streamlit_server):
    page = browser_page
    page.goto(f"{streamlit_server}/train?tr_data=points&tr_objective=dsm&tr_steps=500")
    wait_idle(page, timeout_ms=120_000)
    canvas = page.locator("[data-testid='stPlotlyChart']").first
    canvas.scroll_into_view_if_needed()
    assert drawn_count(page) == 0
    drag_box(page, canvas, (0.30, 0.30), (0.42, 0.42))           # one blob …
    first = drawn_count(page)
    assert first and first > 0
    canvas = page.locator("[data-testid='stPlotlyChart']").first  # the canvas has a fresh key
    drag_box(page, canvas, (0.60, 0.62), (0.70, 0.72))           # … and another
    n = drawn_count(page)
    assert n > first
    assert page.get_by_text(f"Your data: {n} points").count()
    shot(page, "train-drawn")
    page.get_by_role("button", name="Undo last stroke").click()   # takes back the second blob only
    wait_idle(page, timeout_ms=60_000)
    assert drawn_count(page) == first
    canvas = page.locator("[data-testid='stPlotlyChart']").first
    drag_box(page, canvas, (0.60, 0.62), (0.70, 0.72))
    assert drawn_count(page) == n

    page.get_by_role("button", name="Train", exact=True).click()
    wait_idle(page, timeout_ms=60_000)
    # The run is listed with its drawn data next to its loss curve, and finishes.
    page.wait_for_function("() => document.body.innerText.includes('DSM on points')", timeout=60_000)
    page.get_by_text(f"Your data · {n} points").first.wait_for(timeout=60_000)
    page.wait_for_function("() => document.body.innerText.includes('`finished`') || "
                           "[...document.querySelectorAll('code')].some(c => c.innerText === 'finished')",
                           timeout=180_000)
    wait_idle(page, timeout_ms=60_000)
    assert page.get_by_text(f"Your data · {n} points").count() >= 1
    shot(page, "train-run-listed")


def test_langevin_trajectories_download_as_a_gif_of_many_frames(browser_page, streamlit_server, tmp_path):
    """The GIF is drawn on click (a deferred download, no rerun) and decodes to the recorded frames."""
    import io

    from PIL import Image

    from tests.browser.server import download

    page = browser_page
    page.goto(f"{streamlit_server}/langevin")
    wait_idle(page, timeout_ms=120_000)
    button = page.get_by_role("button", name="Download the trajectories (GIF)")
    data = download(page, button, tmp_path / "langevin.gif")
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.n_frames >= 20
    frames = set()
    for i in range(0, gif.n_frames, 5):
        gif.seek(i)
        frames.add(gif.convert("RGB").tobytes())
    assert len(frames) > 3                                   # the particles move between frames
