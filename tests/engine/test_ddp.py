"""torchrun/DDP for real, on CPU: two gloo processes on loopback, from the same initial weights and
the same global batch split in two, end one optimiser step with the same parameters (and the same
averaged gradients) as one process on the whole batch. The gradients are compared too: Adam's
first step is ≈ lr·sign(g), blind to a gradient off by a constant factor (a sum instead of a mean)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.models.registry import build_model
from engine.training.distributed import Dist

sys.path.insert(0, str(Path(__file__).parent))
from ddp_step import SPEC, one_step  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_take_the_step_of_one_process_on_the_whole_batch(tmp_path):
    from safetensors.torch import load_file

    port = free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo",
               "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        procs.append(subprocess.Popen([sys.executable, str(Path(__file__).parent / "ddp_step.py"),
                                       str(tmp_path)], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for p in procs:
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0, out[-2000:]

    single = one_step(Dist())
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    assert set(ranks[0]) == set(single)
    for name, want in single.items():      # to float32 rounding: ‖got − want‖ ≤ 1e-5 ‖want‖
        for got in ranks:
            assert float((got[name] - want).norm()) <= 1e-5 * float(want.norm()) + 1e-9, name
    torch.manual_seed(0)
    initial = dict(build_model(SPEC).named_parameters())
    assert all(float(single["grad." + k].norm()) > 0 for k in initial)
    assert sum(not torch.equal(single["param." + k], v.detach()) for k, v in initial.items()) > len(initial) // 2

def test_a_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        Dist(world=2, rank=0).local_batch(7)
    assert Dist(world=2, rank=1).local_batch(8) == 4 and Dist().local_batch(7) == 7
