"""The Train page through AppTest: start → progress → finished run, learned-vs-exact figure and the
comparison table; a running job outlives page reruns and a new session, queues, and cancels."""

import json
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORELAB_RUNS", str(tmp_path))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    # Stop anything a test left running.
    from engine.store.jobs import JobManager
    jm = JobManager(tmp_path)
    for info in jm.runs():
        if info.state in ("queued", "starting", "running"):
            jm.cancel(info.dir)
    st.cache_resource.clear()


def open_train_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, at.exception
    return at


def start(at: AppTest, objective: str, steps: int) -> AppTest:
    at.selectbox(key="tr_objective").set_value(objective)
    at.select_slider(key="tr_steps").set_value(steps)
    at.button[0].click()  # the form's "Train"
    at.run()
    assert not at.exception, at.exception
    return at


def run_dirs(root: Path) -> list[Path]:
    return sorted((d for d in root.iterdir() if (d / "config.json").exists()),
                  key=lambda d: json.loads((d / "config.json").read_text())["created"])


def state_of(d: Path) -> str:
    from engine.store.runs import read_run
    return read_run(d).state


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_start_progress_finished_then_learned_vs_exact_and_comparison(runs_root):
    at = start(open_train_page(), "dsm", 200)
    assert any("Started" in s.value for s in at.success)
    (run,) = run_dirs(runs_root)
    argv = json.loads((run / "config.json").read_text())["argv"]
    assert argv[0] == "train2d"                     # `python -m engine train2d …`, flags in any order
    assert argv[argv.index("--data") + 1] == "mixture" and argv[argv.index("--objective") + 1] == "dsm"
    seen_running = False
    deadline = time.time() + 120
    while time.time() < deadline:
        at.run()  # run_every does not tick in AppTest: rerun to refresh the fragment
        text = markdown_text(at)
        seen_running |= "`running`" in text or "`starting`" in text
        if "`finished`" in text:
            break
        time.sleep(0.5)
    assert "`finished`" in markdown_text(at), (run / "log.txt").read_text()[-400:]
    assert seen_running or state_of(run) == "finished"
    assert at.get("progress")[0].proto.value == 100
    figures = {title_of(f): f for f in plotly_specs(at)}
    loss = figures["Loss"]                                  # the live loss chart of the run
    assert len(loss["data"][0]["x"]) == 20                  # a record every 10 steps
    # Learned vs exact at the run's σ, with the error map: three panels.
    fields = next(f for f in figures.values() if f["layout"].get("annotations"))
    titles = [a["text"] for a in fields["layout"]["annotations"]]
    assert titles[0].startswith("Learned") and titles[1].startswith("Exact") and "Error" in titles[2]
    assert at.metric[0].label.startswith("Fisher")
    fisher = float(at.metric[0].value)
    assert fisher > 0
    # The comparison table and chart list the finished run with its Fisher divergence and s/step.
    table = next(m.value for m in at.markdown if m.value.startswith("| run |"))
    row = table.splitlines()[2].split("|")
    assert row[2].strip() == "dsm" and float(row[5]) == pytest.approx(fisher, rel=1e-3)
    assert float(row[6]) > 0 and float(row[8]) > 0      # bias floor (DSM) and s/step
    bars = figures["Fisher divergence under the data (lower is better)"]
    assert len(bars["data"][0]["x"]) == 1


def plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def title_of(spec: dict) -> str:
    t = spec["layout"].get("title", "")
    return t.get("text", "") if isinstance(t, dict) else t


def test_a_job_survives_reruns_and_a_new_session_queues_another_and_cancels(runs_root):
    at = start(open_train_page(), "ssm-vr", 20000)
    at = start(at, "dsm", 20000)
    first, second = run_dirs(runs_root)
    deadline = time.time() + 90
    while state_of(first) != "running" and time.time() < deadline:
        time.sleep(0.3)
    for _ in range(3):           # the page re-runs; the job does not care
        at.run()
    assert state_of(first) == "running"
    assert state_of(second) == "queued"                   # one slot on this machine
    assert "`queued`" in markdown_text(at)

    # A new browser session (a reload) sees the same runs.
    again = open_train_page()
    text = markdown_text(again)
    assert "`running`" in text and "`queued`" in text
    cancel_buttons = [b for b in again.button if b.label == "Cancel"]
    assert len(cancel_buttons) == 2
    # Cancel the queued run first (dropped at once, never launched), then the running one.
    again.button(key=f"tr_cancel_{second.name}").click()
    again.run()
    assert state_of(second) == "cancelled"
    again.button(key=f"tr_cancel_{first.name}").click()
    again.run()
    deadline = time.time() + 60
    while state_of(first) != "cancelled" and time.time() < deadline:
        time.sleep(0.3)
    assert state_of(first) == "cancelled"
    assert not (second / "launch.json").exists()
    again.run()
    assert markdown_text(again).count("`cancelled`") == 2


def test_langevin_page_samples_with_a_trained_checkpoint_next_to_the_exact_score(runs_root):
    import torch

    from engine.training.toy2d import Train2DConfig, train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(Train2DConfig(objective="ncsn", steps=300, eval_every=0), runs_root / "ncsn-run")
    finally:
        torch.set_num_threads(threads)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/langevin.py").run()
    assert not at.exception, at.exception
    at.select_slider(key="lv_n").set_value(250)
    at.slider(key="lv_steps").set_value(50).run()
    picker = at.selectbox(key="lv_learned_ckpt")
    assert picker.value == "exact score only"
    picker.set_value(str(runs_root / "ncsn-run" / "model")).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    fig = next(f for f in plotly_specs(at) if any("learned (NCSN)" in a.get("text", "")
                                                   for a in f["layout"].get("annotations", [])))
    names = [a["text"] for a in fig["layout"]["annotations"]]
    assert "exact score" in names[0] and "learned (NCSN)" in names[1]
    table = next(m.value for m in at.markdown if m.value.startswith("| score |"))
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert set(rows) == {"target", "exact", "learned"}
    learned_w = [float(v) for v in rows["learned"].split("|")[2:4]]
    assert sum(learned_w) == pytest.approx(1.0, abs=1e-3)


def test_a_run_on_non_gaussian_data_and_seed_experiment_a(runs_root):
    from engine.training.toy2d import Train2DConfig, train, write_run_config

    config = Train2DConfig(data="moons", objective="dsm", sigma=0.2, steps=30, log_every=10)
    run = runs_root / "moons-run"
    write_run_config(run, "dsm", ["train2d"], config)
    train(config, run)
    at = open_train_page()
    assert not at.error, [e.value for e in at.error]
    specs = plotly_specs(at)
    fields = next(f for f in specs if f["layout"].get("annotations"))
    assert [a["text"] for a in fields["layout"]["annotations"]] == ["Learned score at σ = 0.2"]
    assert any("No exact score" in c.value for c in at.caption)
    # Seed experiment (a): seconds per step against dimension, one line per objective.
    at.multiselect(key="tr_dims").set_value([2, 8])
    at.button(key="tr_measure").click().run()
    assert not at.exception, at.exception
    cost = next(f for f in plotly_specs(at) if title_of(f).startswith("Cost of one training step"))
    assert [t["name"] for t in cost["data"]] == ["ISM (exact trace)", "SSM", "DSM"]
    assert all(list(t["x"]) == [2, 8] for t in cost["data"])


def preview_of(at: AppTest) -> dict | None:
    """The live preview figure's step title and sample points, if the page shows one."""
    for spec in plotly_specs(at):
        titles = [a.get("text", "") for a in spec["layout"].get("annotations", [])]
        if titles and titles[0].startswith("Samples · step"):
            samples = next(t for t in spec["data"] if t.get("name") == "samples")
            return {"title": titles[0], "titles": titles, "x": json.dumps(samples["x"], sort_keys=True)}
    return None


def learned_field_of(at: AppTest) -> str | None:
    """The learned field's arrows in the "Learned vs exact" section, if it shows one."""
    for spec in plotly_specs(at):
        titles = [a.get("text", "") for a in spec["layout"].get("annotations", [])]
        if titles[:2] == ["Learned score at σ = 1", "Exact score, over log p_σ"]:
            return json.dumps(spec["data"][:3], sort_keys=True)
    return None


def test_a_running_job_previews_its_latest_checkpoint_and_the_preview_follows_it(runs_root):
    """Watch it learn: two polls of the running job's panel show two different checkpoints' samples
    and fields, and so does the "Learned vs exact" section (both are fragments that rerun every
    few seconds while a run is active; AppTest reruns by hand). An earlier finished run is there
    too: the section switches to the new run once it has a model, and follows it."""
    from engine.training.toy2d import Train2DConfig, train, write_run_config

    earlier = runs_root / "earlier-ncsn"
    write_run_config(earlier, "ncsn", ["train2d"], Train2DConfig(steps=300, eval_every=0))
    train(Train2DConfig(steps=300, eval_every=0), earlier)
    at = start(open_train_page(), "ncsn", 20000)
    run = next(d for d in run_dirs(runs_root) if d != earlier)
    seen, fields = {}, set()
    deadline = time.time() + 240
    while time.time() < deadline and (len(seen) < 2 or len(fields) < 2):
        at.run()
        assert not at.exception, at.exception
        pv = preview_of(at)
        if pv is not None and len(seen) < 2:
            seen.setdefault(pv["title"], pv)
        if pv is not None:
            fields.add(learned_field_of(at))
        time.sleep(0.5)
    assert len(seen) == 2, (list(seen), (run / "log.txt").read_text()[-400:])
    first, second = seen.values()
    steps = [int(p["title"].split("step ")[1].split()[0]) for p in (first, second)]
    assert steps[0] < steps[1] and all(s % 500 == 0 for s in steps)   # a checkpoint every 500 steps
    assert first["titles"][1:] == ["Learned score at σ = 1", "Exact score"]
    assert first["x"] != second["x"]                                    # new samples, same seed
    assert any("Watching it learn" in c.value for c in at.caption)   # the fixture cancels the job
    assert None not in fields and len(fields) >= 2       # "Learned vs exact" follows the run too
    assert any("Recovered weights are sampled once the run ends" in c.value for c in at.caption)


def test_finished_ncsn_run_shows_its_recovered_weights_next_to_the_exact_score(runs_root):
    from engine.training.toy2d import Train2DConfig, train, write_run_config

    config = Train2DConfig(steps=300, eval_every=0)
    run = runs_root / "ncsn-run"
    write_run_config(run, "ncsn", ["train2d"], config)
    train(config, run)
    at = open_train_page()
    assert not at.exception, at.exception
    table = next(m.value for m in at.markdown if m.value.startswith("**Recovered weights**"))
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("|")}
    assert {"target", "exact score", "learned"} <= set(rows)
    learned = [float(v) for v in rows["learned"].split("|")[2:4]]
    assert sum(learned) == pytest.approx(1.0, abs=1e-3)
    assert any("python -m engine mix --sampler annealed --checkpoint" in c.value for c in at.caption)


def test_a_three_mode_mixture_with_unequal_widths_from_the_sliders(runs_root):
    at = open_train_page()
    at.checkbox(key="tr_three").check().run()
    at.selectbox(key="tr_widths").set_value("0.5 / 1 / 1.5").run()
    at.slider(key="tr_w").set_value(0.6).run()
    assert any("Mixture weights 0.48 / 0.32 / 0.2" in c.value for c in at.caption)
    at = start(at, "ncsn", 200)
    (run,) = run_dirs(runs_root)
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["means"] == [[5.0, 5.0], [-5.0, -5.0], [5.0, -5.0]]
    assert config["weights"] == pytest.approx([0.48, 0.32, 0.2]) and config["stds"] == [0.5, 1.0, 1.5]


def test_every_chart_saves_png_at_twice_its_size_without_a_rerun(runs_root):
    """The camera button of each chart (Plotly's own, in the browser) saves a PNG at scale 2."""
    from engine.training.toy2d import Train2DConfig, train, write_run_config

    config = Train2DConfig(data="points", points=((0.0, 0.0), (3.0, 1.0), (-2.0, 4.0)), objective="dsm",
                           steps=20, log_every=10)
    run = runs_root / "drawn-run"
    write_run_config(run, "dsm", ["train2d"], config)
    train(config, run)
    at = open_train_page()
    at.selectbox(key="tr_data").set_value("points").run()
    charts = at.get("plotly_chart")
    assert len(charts) >= 3                                   # canvas, loss, drawn data, fields
    for chart in charts:
        assert json.loads(chart.proto.config)["toImageButtonOptions"] == {"format": "png", "scale": 2}
    assert any(title_of(s) == "Your data · 3 points" for s in plotly_specs(at))
