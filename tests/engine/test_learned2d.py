"""The Train page's computations on a trained 2D score (engine.lab.learned2d): the live preview of
a checkpoint, the recovered weights next to the exact score's (the `mix` CLI's numbers), and
training on your own points (drawn or uploaded as CSV)."""

import json

import numpy as np
import pytest
from engine.cli.main import main
from engine.device import one_thread
from engine.lab import learned2d
from engine.lab.mixing import run_mix
from engine.training.toy2d import MAX_POINTS, POINTS_FILE, Train2DConfig, train


@pytest.fixture(autouse=True)
def small_mlp_on_one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def short_ncsn(tmp_path_factory):
    run = tmp_path_factory.mktemp("ncsn") / "run"
    with one_thread():
        train(Train2DConfig(steps=300, eval_every=0, checkpoint_every=100), run)
    return run


def test_preview_samples_the_latest_checkpoint_and_draws_its_field_next_to_the_exact_one(short_ncsn):
    pv = learned2d.preview(str(short_ncsn / "model"), particles=200, steps_per_level=5)
    assert pv["x"].shape == (200, 2) and np.isfinite(pv["x"]).all()
    assert pv["step"] == 300 and pv["total"] == 300 and pv["sigma"] == pytest.approx(1.0)
    assert {"learned", "exact", "err", "logp"} <= set(pv["field"])
    assert sum(pv["mode_weights"]) == pytest.approx(1.0) and pv["target_weights"] == [0.8, 0.2]
    assert learned2d.preview(str(short_ncsn / "nothing"))["error"]


def test_weights_check_reports_what_the_mix_command_reports(short_ncsn, capsys):
    model = str(short_ncsn / "model")
    check = learned2d.weights_check(model)
    assert main(["mix", "--sampler", "annealed", "--checkpoint", model]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert check["target"] == [0.8, 0.2]
    assert [round(w, 4) for w in check["learned"]["mode_weights"]] == cli["mode_weights"]
    # The exact column: the same sampler code, particles and noise, only the score differs.
    config = learned2d.mix_config(model, checkpoint=None)
    exact = run_mix(config, score_fn=config.mixture.score)
    assert check["exact"]["mode_weights"] == exact.mode_weights
    assert check["exact"]["weight_error"] == pytest.approx(exact.weight_error)
    assert abs(check["exact"]["mode_weights"][0] - 0.8) < 0.03


def test_training_on_your_own_points_keeps_them_with_the_run(tmp_path):
    points = ((0.0, 1.0), (2.0, 3.0), (-4.5, 1.25), (3.0, -3.0))
    config = Train2DConfig(data="points", points=points, steps=20, eval_every=0)
    result = train(config, tmp_path / "run")
    assert result.state == "finished"
    saved = np.loadtxt(tmp_path / "run" / POINTS_FILE, delimiter=",", skiprows=1)
    assert saved.tolist() == [list(p) for p in points]
    assert learned2d.points_from_csv((tmp_path / "run" / POINTS_FILE).read_bytes()) == points
    meta = result.meta
    assert meta["target"] == {"data": "points"} and meta["metrics"].get("fisher") is None
    assert learned2d.run_points(meta).tolist() == [list(p) for p in points]
    field = learned2d.learned_field(str(tmp_path / "run" / "model"), 1.0)
    assert field["data_points"].tolist() == [list(p) for p in points] and "exact" not in field
    pv = learned2d.preview(str(tmp_path / "run" / "model"), particles=50, steps_per_level=3)
    assert pv["x"].shape == (50, 2) and "mode_weights" not in pv
    assert learned2d.sigma_rule("points", points=points) == pytest.approx(np.hypot(7.5, 4.25))


@pytest.mark.parametrize("data,pattern", [
    (b"1,2\n", "at least 2 points"),
    (b"x,y\n1,2\nthree,4\n", "Line 3"),
    (b"\xff\xfe\x00", "not a text CSV"),
    (b"1,2\n3,nan\n", "finite"),
    (b"1,2\n3,1000\n", "between"),
    ("\n".join(f"{i % 10},{i % 7}" for i in range(MAX_POINTS + 1)).encode(), "At most"),
    (b"0,0\n" * 60_000, "kB"),
])
def test_a_bad_csv_is_one_sentence(data, pattern):
    with pytest.raises(learned2d.PointsError, match=pattern) as err:
        learned2d.points_from_csv(data)
    assert len(str(err.value).splitlines()) == 1


def test_a_csv_with_a_header_and_extra_columns_reads_its_first_two():
    assert learned2d.points_from_csv(b"x,y,label\n1,2,a\n-3.5,4e0,b\n\n") == ((1.0, 2.0), (-3.5, 4.0))


def test_bad_point_flags_are_one_sentence(capsys, tmp_path):
    for argv, pattern in [(["--data", "points"], "at least 2 points"),
                          (["--data", "points", "--points", "0,0;1e6,1"], "between")]:
        rc = main(["train2d", *argv, "--out", str(tmp_path / "r")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and pattern in err and len(err.splitlines()) == 1
