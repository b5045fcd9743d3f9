"""One optimiser step of a tiny MNIST NCSN on the project's training path (engine.training:
init_distributed, Dist.wrap / local_batch, train_loop on a Task with ncsn_loss terms), on this
rank's share of a fixed global batch. Run by tests/engine/test_ddp.py: once in-process on one
process (`one_step`), and as two gloo processes (`python tests/engine/ddp_step.py OUT`, with
RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT set), each writing OUT/rank{R}.safetensors."""

from __future__ import annotations

import sys

import torch

from engine import losses
from engine.models.registry import build_model
from engine.training.distributed import Dist, init_distributed
from engine.training.loop import LoopConfig, Task, train_loop

BATCH = 8
SPEC = {"kind": "ncsn_unet", "channels": [4, 8, 8, 8], "embed_dim": 16, "sigma_embed": True}  # tiny
SIGMAS = torch.tensor([5.0, 1.0, 0.2, 0.05])


def global_batch():
    """The same images, noise and levels on every rank."""
    g = torch.Generator().manual_seed(123)
    x = torch.rand((BATCH, 1, 28, 28), generator=g)
    z = torch.randn(x.shape, generator=g)
    levels = torch.randint(len(SIGMAS), (BATCH,), generator=g)
    return x, z, levels


def one_step(d: Dist) -> dict:
    """Parameters and gradients after one step on this rank's share of the global batch."""
    device = torch.device("cpu")
    torch.manual_seed(0)                                    # the same initial weights everywhere
    spec = SPEC
    model = build_model(spec)
    net = d.wrap(model, device)
    x, z, levels = global_batch()
    share = d.local_batch(BATCH)
    mine = slice(d.rank * share, (d.rank + 1) * share)

    def batch_loss(net):
        return losses.ncsn_loss(net, x[mine], SIGMAS, levels=levels[mine], z=z[mine], reduce=False)

    task = Task(model=model, net=net, batch_loss=batch_loss, meta=lambda p: {"model": spec})
    train_loop(task, LoopConfig(steps=1, lr=1e-3), dist=d, device=device)
    out = {f"param.{k}": v.detach().clone() for k, v in model.named_parameters()}
    out.update({f"grad.{k}": v.grad.detach().clone() for k, v in model.named_parameters()})
    return out


if __name__ == "__main__":
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    d = init_distributed(torch.device("cpu"))
    tensors = one_step(d)
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{sys.argv[1]}/rank{d.rank}.safetensors")
    d.finish()
