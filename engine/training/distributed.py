"""One process or several under `torchrun` (WORLD_SIZE > 1): torch.distributed with gloo on CPU,
nccl on CUDA. Rank 0 writes the run folder; every rank must take the same decision to stop, so
decisions go through `agree` (the largest code any rank proposes wins).

A global batch of B examples is split into equal shares of B / world (`local_batch`); each rank's
loss is the mean over its share, and DDP (`wrap`) averages the ranks' gradients in backward, so
one step equals the step of one process on the mean over the whole batch (tests/engine/test_ddp.py
checks this with two gloo processes)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def agree(self, code: int, device="cpu") -> int:
        """max over ranks of an integer decision code (0 = carry on)."""
        if self.world == 1:
            return code
        import torch.distributed as dist
        t = torch.tensor([float(code)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """What batch_loss calls: the model under DistributedDataParallel when there are several
        processes (gradients averaged over ranks in backward), else the model itself."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP
        return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    def local_batch(self, batch: int) -> int:
        """This rank's share of a global batch; unequal shares would weight examples unequally in
        the averaged gradient, so the batch must divide evenly."""
        if batch % self.world:
            raise ValueError(f"The batch size ({batch}) must be a multiple of the number of "
                             f"processes ({self.world}).")
        return batch // self.world

    def finish(self) -> None:
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()
            dist.destroy_process_group()


def init_distributed(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(world=dist.get_world_size(), rank=dist.get_rank(),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")))
