"""Real browser: the SDEs page draws the reverse SDE vs ODE panels, and switching VE → VP redraws
them without an exception."""

from tests.browser.server import wait_idle

# Final particles of the right-hand (ODE) panel, decoded by Plotly (x2 axes).
READ_ODE = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = gd._fullData && gd._fullData.find(
      d => d.type === 'scattergl' && d.mode === 'markers' && d.xaxis === 'x2' && d.name === 'probability-flow ODE');
    if (t) return Array.from(t.x).slice(0, 10);
  }
  return null;
}"""


def test_sde_page_switches_sde_in_a_browser(streamlit_server, browser_page, tmp_path):
    page = browser_page
    page.goto(f"{streamlit_server}/sde")
    wait_idle(page, timeout_ms=180_000)
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    page.get_by_role("tab", name="Reverse: SDE vs ODE").click()
    page.wait_for_function(f"({READ_ODE})() !== null", timeout=60_000)
    before = page.evaluate(READ_ODE)
    page.get_by_text("VP", exact=True).first.click()
    page.wait_for_function(
        f"(() => {{ const x = ({READ_ODE})(); return x && x[0] !== {before[0]}; }})()", timeout=180_000)
    wait_idle(page, timeout_ms=180_000)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.get_by_text("snr", exact=False).count() > 0
    page.screenshot(path=str(tmp_path / "sde.png"), full_page=True)
    assert (tmp_path / "sde.png").stat().st_size > 10_000


# Painted path lines of the Reverse tab's (t, (x₁+x₂)/√2) chart: SVG paths with a non-empty `d`.
READ_PATH_LINES = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const title = gd.querySelector('.gtitle');
    if (!title || !title.textContent.includes('t from 1 to 0')) continue;
    const box = gd.getBoundingClientRect();
    if (box.width === 0) continue;
    return Array.from(gd.querySelectorAll('.scatterlayer path.js-line'))
      .filter(p => (p.getAttribute('d') || '').length > 20 && p.getBBox().width > 5).length;
  }
  return null;
}"""


def test_sde_reverse_path_chart_draws_visible_lines(streamlit_server, browser_page):
    page = browser_page
    page.goto(f"{streamlit_server}/sde")
    wait_idle(page, timeout_ms=180_000)
    page.get_by_role("tab", name="Reverse: SDE vs ODE").click()
    page.wait_for_function(f"(({READ_PATH_LINES})() || 0) > 0", timeout=120_000)
    assert page.evaluate(READ_PATH_LINES) >= 2  # reverse SDE and ODE paths
