"""python -m engine mix: JSON for good flags, one line and a non-zero exit for bad ones."""

import json
import subprocess
import sys

import pytest

from engine.cli.main import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True,
                          timeout=120)


def test_mix_prints_json_with_weights_in_means_order(capsys):
    code = main(["mix", "--means", "-5,-5;5,5", "--weights", "0.2,0.8", "--stds", "1,1",
                 "--sampler", "annealed", "--particles", "2000", "--steps", "100",
                 "--step-size", "0.1", "--sigma-max", "20", "--sigma-min", "1", "--levels", "10",
                 "--init", "uniform:-8,8", "--seed", "0", "--denoise"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target_weights"] == pytest.approx([0.2, 0.8])
    assert out["mode_weights"][0] == pytest.approx(0.2, abs=0.03)
    assert out["weight_error"] == pytest.approx(abs(out["mode_weights"][0] - 0.2), abs=1e-3)
    assert out["seconds"] > 0 and out["nfe"] == 1001


def test_plain_langevin_flag_set_misses_the_weights(capsys):
    assert main(["mix", "--sampler", "langevin", "--steps", "1000", "--step-size", "0.1",
                 "--particles", "2000", "--seed", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["weight_error"] > 0.2


@pytest.mark.parametrize("args,fragment", [
    (["--weights", "0.8,0.1,0.1"], "weights"),
    (["--step-size", "abc"], "invalid float"),
    (["--sampler", "euler"], "invalid choice"),
    (["--sigma-max", "0.5"], "σ_max"),
    (["--means", "5;x"], "Cannot read points"),
    (["--init", "cauchy:0,1"], "initial distribution"),
    (["--particles", "0"], "particle"),
])
def test_bad_flags_print_one_line_and_exit_non_zero(args, fragment, capsys):
    code = main(["mix", *args])
    captured = capsys.readouterr()
    assert code != 0
    lines = [l for l in captured.err.splitlines() if l.strip()]
    assert len(lines) == 1 and fragment in lines[0], captured.err
    assert captured.out == ""


def test_bad_flag_from_a_real_shell_has_no_traceback():
    proc = run_cli("mix", "--weights", "0.8,0.1,0.1")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_diverging_run_stops_with_hint():
    proc = run_cli("mix", "--sampler", "langevin", "--step-size", "50", "--steps", "100")
    assert proc.returncode == 3
    assert "smaller step size" in proc.stderr and "Traceback" not in proc.stderr


def test_checkpoint_without_means_scores_against_its_own_mixture(tmp_path, capsys):
    """A model trained on 0.3/0.7 is judged against 0.3/0.7, not the seeds' 0.8/0.2 default."""
    from engine.store.checkpoints import save_checkpoint

    save_checkpoint(tmp_path / "m", {}, {"model": {"kind": "none"},
                                         "target": {"data": "mixture", "means": [[5, 5], [-5, -5]],
                                                    "weights": [0.3, 0.7], "stds": [[1, 1], [1, 1]]}})
    from engine.cli.mix import _fill_target
    import argparse

    args = argparse.Namespace(means=None, weights=None, stds=None, checkpoint=str(tmp_path / "m"))
    _fill_target(args)
    assert (args.means, args.weights, args.stds) == ("5,5;-5,-5", "0.3,0.7", "1,1")
    args = argparse.Namespace(means=None, weights=None, stds=None, checkpoint=None)
    _fill_target(args)
    assert (args.means, args.weights) == ("5,5;-5,-5", "0.8,0.2")
