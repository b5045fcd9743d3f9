"""One real-browser smoke test: `streamlit run app.py` in headless Debian Chromium, go to the
Langevin page, move a slider with the keyboard, and see the figures change."""

from __future__ import annotations

from tests.browser.server import start_server, stop_server, wait_idle

# The Plotly figures as the browser holds them: each chart's div carries its `data`. The weights
# are horizontal bars beside the final particles (their lengths in x).
READ_BARS = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const bars = (gd.data || []).filter(t => t.type === 'bar');
    if (bars.length) {
      return bars.map(t => [t.name, Array.from(t.orientation === 'h' ? t.x : t.y)]);
    }
  }
  return null;
}"""

# The annealed panel's final particles (right-hand axes x2). Point arrays arrive base64-encoded;
# Plotly's `_fullData` holds them decoded. (Plain Langevin's particles barely move when the weight
# changes — that is the page's point — so they are not a good witness of a rerun.)
READ_PARTICLES = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const t = gd && gd._fullData && gd._fullData.find(
    d => d.type.startsWith('scatter') && d.mode === 'markers' && d.xaxis === 'x2' && d.name === 'Annealed Langevin');
  return t ? Array.from(t.x).slice(0, 20) : null;
}"""


def test_langevin_page_slider_changes_the_figures(streamlit_server, browser_page, tmp_path):
    page = browser_page
    page.goto(streamlit_server)
    page.wait_for_selector("[data-testid='stSidebarNav']", timeout=90_000)
    wait_idle(page)
    page.get_by_role("link", name="Langevin vs annealed").first.click()
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    wait_idle(page)
    page.wait_for_function(f"({READ_BARS})() !== null", timeout=30_000)

    bars = dict(page.evaluate(READ_BARS))
    assert [round(v, 6) for v in bars["Target"]] == [0.8, 0.2]
    particles = page.evaluate(READ_PARTICLES)
    assert particles

    # The first slider on the page is the weight of the mode at (a, a): one step left is 0.75.
    slider = page.locator("[data-testid='stSlider'] input[type='range']").first
    slider.focus()
    slider.press("ArrowLeft")
    page.wait_for_function(
        f"(() => {{ const b = ({READ_BARS})(); return b && b[0][1][0] < 0.8; }})()", timeout=90_000)
    wait_idle(page)

    bars_after = dict(page.evaluate(READ_BARS))
    assert [round(v, 6) for v in bars_after["Target"]] == [0.75, 0.25]
    assert page.evaluate(READ_PARTICLES) != particles
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(tmp_path / "langevin.png"), full_page=True)
    assert (tmp_path / "langevin.png").stat().st_size > 10_000


def test_a_page_url_opened_first_after_a_server_start_runs_inside_app_py(browser_page, tmp_path):
    """The first request of a fresh server is a page URL (a bookmark, a reload): the page must
    come with app.py's sidebar (seed, device) and navigation, not run on its own."""
    proc, url, log = start_server(tmp_path)
    try:
        page = browser_page
        page.goto(f"{url}/scores")
        page.wait_for_selector("[data-testid='stSidebarNav']", timeout=90_000)
        wait_idle(page)
        page.wait_for_selector(".js-plotly-plot", timeout=90_000)
        assert page.get_by_role("heading", name="Scores").count() == 1
        sidebar = page.locator("[data-testid='stSidebar']")
        assert sidebar.get_by_text("Seed", exact=True).count() == 1   # app.py's shared controls
        assert sidebar.get_by_text("Device", exact=True).count() == 1
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Langevin vs annealed" in nav and "SDEs" in nav   # app.py's titles, not file names
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        stop_server(proc)


def test_a_slider_move_goes_into_the_url_and_the_url_restores_it_in_a_fresh_session(
        streamlit_server, chromium, tmp_path):
    """Moving the weight slider writes lv_w to the address; that address opened in a new browser
    context (a fresh session) shows the same target; a bad value falls back with one line."""
    first = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = first.new_page()
    page.goto(f"{streamlit_server}/langevin")
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    wait_idle(page)
    slider = page.locator("[data-testid='stSlider'] input[type='range']").first
    slider.focus()
    slider.press("ArrowLeft")
    slider.press("ArrowLeft")
    page.wait_for_function("location.search.includes('lv_w=0.7')", timeout=90_000)
    wait_idle(page)
    link = page.url
    page.get_by_role("button", name="Copy link").click()
    code = page.locator("[data-testid='stPopoverBody'] [data-testid='stCode']").first
    code.wait_for(timeout=30_000)
    assert link.split("/")[-1] in code.inner_text()  # the popover shows this page's address
    first.close()

    fresh = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = fresh.new_page()
    page.goto(link)
    page.wait_for_function(f"(() => {{ const b = ({READ_BARS})(); return b && b[0][1][0] < 0.8; }})()",
                           timeout=90_000)
    bars = dict(page.evaluate(READ_BARS))
    assert [round(v, 6) for v in bars["Target"]] == [0.7, 0.3]
    assert page.locator("[data-testid='stSlider']").first.inner_text().find("0.70") >= 0
    page.screenshot(path=str(tmp_path / "restored.png"), full_page=True)

    page.goto(f"{streamlit_server}/langevin?lv_w=banana&lv_n=3")
    page.wait_for_function(f"({READ_BARS})() !== null", timeout=90_000)
    wait_idle(page)
    assert [round(v, 6) for v in dict(page.evaluate(READ_BARS))["Target"]] == [0.8, 0.2]
    toasts = page.locator("[data-testid='stToast']")
    assert toasts.count() == 2 and "lv_w" in toasts.all_inner_texts()[0] + toasts.all_inner_texts()[1]
    assert page.locator("[data-testid='stException']").count() == 0
    fresh.close()
