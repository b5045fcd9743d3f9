"""Sampling as a background job (engine.store.jobs + `python -m engine sample --run-dir`): the
progress protocol (status with measured seconds per level and ETA, current.npy, cancel between
levels), the job folder's results matching an in-process run, damaged arrays read as None; and the
slide-size grid (nearest-neighbour upscaling, ≥ 512 px)."""

import io
import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from engine.render.images import SLIDE_WIDTH, grid_array, slide_grid_png, slide_png, upscaled
from engine.store.jobs import (JobCancelled, JobManager, LevelReporter, job_progress, read_array,
                               save_array)
from engine.store.runs import read_run

TINY = {"kind": "ncsn_unet", "channels": [8, 16, 16, 32], "embed_dim": 16}


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


# -- slide-size grids --------------------------------------------------------------------------

def test_upscaling_is_pixel_exact_nearest_neighbour_and_at_least_512_wide():
    rng = np.random.default_rng(0)
    images = rng.random((16, 28, 28)).astype(np.float32)
    grid = grid_array(images)                       # 4 × 4 digits: 122 px
    big = _png(slide_grid_png(images))
    k = -(-SLIDE_WIDTH // grid.shape[1])            # the smallest whole factor reaching 512
    assert k == 5 and big.shape == (5 * 122, 5 * 122) and big.shape[1] >= 512
    for dy in range(k):
        for dx in range(k):                          # every pixel became a k × k block
            assert np.array_equal(big[dy::k, dx::k], grid)
    assert (k - 1) * grid.shape[1] < 512            # and no bigger than needed
    assert np.array_equal(upscaled(np.ones((3, 600))), np.ones((3, 600)))   # wide enough already
    assert _png(slide_png(slide_grid_png(images))).shape == big.shape        # a PNG already big
    assert _png(slide_png(_png_bytes(grid))).shape == big.shape


def _png_bytes(a):
    from engine.render.images import png_bytes
    return png_bytes(a)


# -- the worker's progress protocol ------------------------------------------------------------

def test_level_reporter_writes_progress_eta_and_live_images_and_stops_on_cancel(tmp_path):
    job = LevelReporter(tmp_path, every_seconds=0.0)
    job(1, 4, np.full((2, 28, 28), 0.5, np.float32))
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["state"], status["step"], status["total"], status["unit"]) == ("running", 1, 4, "level")
    assert status["sec_per_unit"] == pytest.approx(status["seconds"])    # measured on 1 level
    assert status["eta_seconds"] == pytest.approx(3 * status["seconds"])  # 3 levels left
    live = read_array(tmp_path / "current.npy", ndim=3)
    assert live.shape == (2, 28, 28) and np.all(live == 0.5)
    info = read_run(tmp_path)
    assert info.progress == pytest.approx(0.25)
    line = job_progress(info)
    assert line.startswith("level 1 of 4 · ") and "left" in line and "per level, measured" in line
    (tmp_path / "cancel").write_text(str(time.time()))
    with pytest.raises(JobCancelled):
        job(2, 4, None)
    job.cancelled()
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "cancelled" and status["message"] == "Cancelled after level 2 of 4."


def test_fast_levels_rewrite_the_files_at_most_every_interval_but_always_the_last(tmp_path):
    job = LevelReporter(tmp_path, every_seconds=60.0)
    for done in range(1, 6):
        job(done, 10, np.full((1, 28, 28), done / 10, np.float32))
    assert json.loads((tmp_path / "status.json").read_text())["step"] == 1
    job(10, 10, np.ones((1, 28, 28), np.float32))
    assert json.loads((tmp_path / "status.json").read_text())["step"] == 10
    assert np.all(read_array(tmp_path / "current.npy") == 1)


def test_damaged_or_foreign_arrays_read_as_none(tmp_path):
    save_array(tmp_path / "ok.npy", np.zeros((2, 28, 28)))
    assert read_array(tmp_path / "ok.npy", ndim=3).dtype == np.float32
    assert read_array(tmp_path / "ok.npy", ndim=4) is None
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    assert read_array(tmp_path / "bad.npy") is None
    assert read_array(tmp_path / "absent.npy") is None
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert read_array(tmp_path / "obj.npy") is None            # never unpickled
    np.save(tmp_path / "int.npy", np.zeros(3, dtype=np.int64))
    assert read_array(tmp_path / "int.npy") is None


# -- end to end: python -m engine sample --run-dir, through the job manager ----------------------

def _tiny_checkpoint(path, levels=6):
    from engine.models.registry import build_model
    from engine.store.checkpoints import save_model

    sig = list(np.geomspace(3.0, 0.05, levels))
    meta = {"model": TINY, "objective": "ncsn",
            "schedule": {"sigmas": sig, "gamma": sig[0] / sig[1], "steps_per_level": 2,
                         "step_size": 2e-4, "sigma_min": sig[-1], "sigma_max": sig[0],
                         "budget_levels": levels}}
    torch.manual_seed(0)
    model = build_model(TINY)
    save_model(path, model, meta)
    return model, meta


def test_a_sampling_job_writes_what_an_in_process_run_returns(tmp_path):
    from engine.mnist.sampling import SampleConfig, sample_images
    from engine.store.checkpoints import load_model
    from engine.training.flags import config_argv

    _tiny_checkpoint(tmp_path / "m")
    cfg = SampleConfig(n=3, seed=4, frames=4)
    manager = JobManager(tmp_path / "jobs")
    run_dir = manager.submit(["sample", "--checkpoint", str(tmp_path / "m"), *config_argv(cfg),
                              "--device", "cpu"], name="sample", out_flag="--run-dir")
    info = manager.wait(run_dir, timeout=120)
    assert info.state == "finished", (run_dir / "log.txt").read_text()[-2000:]
    assert (info.step, info.total) == (6, 6) and info.status["unit"] == "level"
    model, meta = load_model(tmp_path / "m")
    direct = sample_images(model, meta, cfg)
    assert np.array_equal(read_array(run_dir / "samples.npy", ndim=3), direct.images)
    assert np.array_equal(read_array(run_dir / "frames.npy", ndim=4), direct.frames)
    assert read_array(run_dir / "current.npy", ndim=3).shape == (3, 28, 28)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["n"] == 3 and result["nfe"] == direct.nfe and result["total_steps"] == 12
    assert result["frame_levels"] == direct.frame_levels and result["seconds"] > 0
    grid = _png((run_dir / "grid.png").read_bytes())
    assert grid.shape[1] >= 512 and np.array_equal(grid[::9, ::9], grid_array(direct.images, nrow=2))


def test_a_cancelled_sampling_job_stops_between_levels(tmp_path):
    _tiny_checkpoint(tmp_path / "m", levels=40)
    manager = JobManager(tmp_path / "jobs")
    run_dir = manager.submit(["sample", "--checkpoint", str(tmp_path / "m"), "--n", "64",
                              "--steps-per-level", "40", "--device", "cpu"],
                             name="sample", out_flag="--run-dir")
    deadline = time.time() + 90
    while manager.get(run_dir).step < 1 and time.time() < deadline:
        time.sleep(0.2)
    assert manager.get(run_dir).state == "running"
    asked = time.time()
    manager.cancel(run_dir)
    info = manager.wait(run_dir, timeout=30)
    assert info.state == "cancelled" and info.step < 40
    assert time.time() - asked < 10          # one level at most, not the whole run
    assert info.message.startswith("Cancelled")
    assert not (run_dir / "samples.npy").exists()


def test_sample_needs_a_destination(tmp_path, capsys):
    from engine.cli import main as cli

    assert cli.main(["sample", "--checkpoint", "checkpoints/ncsn_mnist", "--n", "1"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "--run-dir" in err[0]


def test_computing_jobs_keep_the_newest_ended_folders_only(tmp_path):
    manager = JobManager(tmp_path, keep_ended=2, max_running=1)
    ended = []
    for k in range(4):
        d = tmp_path / f"job{k}"
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"name": "x", "argv": ["x"], "created": float(k)}))
        (d / "status.json").write_text(json.dumps({"state": "finished" if k != 0 else "queued"}))
        ended.append(d)
    manager.prune()                                  # job0 is queued: kept whatever its age
    assert [d.exists() for d in ended] == [True, False, True, True]
    assert JobManager(tmp_path / "runs").keep_ended is None   # training runs: never pruned


def test_nll_density_map_job_writes_the_page_s_arrays(tmp_path, capsys):
    from pathlib import Path

    from engine.cli import main as cli
    from engine.lab.sde_views import likelihood_view

    ckpt = Path(__file__).resolve().parents[2] / "checkpoints" / "sde2d_seeds_ve"
    if not ckpt.with_suffix(".json").exists():
        pytest.skip("no shipped 2D SDE checkpoint")
    run_dir = tmp_path / "job"
    run_dir.mkdir()
    assert cli.main(["nll", "--checkpoint", str(ckpt), "--grid", "4", "--run-dir", str(run_dir)]) == 0
    info = read_run(run_dir)
    assert info.state == "finished" and info.status["unit"] == "%" and job_progress(info)
    direct = likelihood_view(str(ckpt), 4)
    for name in ("grid", "ode", "exact"):
        assert np.allclose(read_array(run_dir / f"{name}.npy"), direct[name], atol=1e-5)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["nfe"] == direct["nfe"] and result["near_error"] == pytest.approx(direct["near_error"], abs=1e-4)
    capsys.readouterr()
    assert cli.main(["nll", "--exact-score", "--means", "5,5", "--weights", "1", "--run-dir",
                     str(tmp_path / "other")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--grid" in err[0]


def test_a_diverging_sampling_job_ends_failed_with_its_sentence(tmp_path, capsys):
    from engine.cli import main as cli

    _tiny_checkpoint(tmp_path / "m")
    run_dir = tmp_path / "job"
    code = cli.main(["sample", "--checkpoint", str(tmp_path / "m"), "--n", "2", "--mode", "annealed",
                     "--step-size", "1e6", "--steps-per-level", "1", "--device", "cpu",
                     "--run-dir", str(run_dir)])
    assert code == 3
    info = read_run(run_dir)
    assert info.state == "failed" and "diverged" in info.message and "\n" not in info.message
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
