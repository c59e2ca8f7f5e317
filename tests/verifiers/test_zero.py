"""Hand-built ZeRO stages: the optimizer's arithmetic and what each stage holds per rank."""
from __future__ import annotations

import pytest
import torch

from verifiers.lab.dist import run_ranks
from verifiers.lab.ranks import run_states, total_bytes, wire_sent
from verifiers.lab.zero import ZeroAdam


def test_stage_zero_fp32_matches_torch_adam():
    """On one process in fp32, ZeroAdam's update is torch's Adam update."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(8, 8))
    b = torch.nn.Parameter(a.detach().clone())
    ours, ref = ZeroAdam([a], lr=1e-2, stage=0, rank=0, world=1), torch.optim.Adam([b], lr=1e-2)
    for _ in range(3):
        for p, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            (p ** 3).sum().backward()
            opt.step()
    assert torch.allclose(a, b, atol=1e-6)


def test_mixed_precision_keeps_an_fp32_master():
    """With bf16 parameters the optimizer holds an fp32 master and two fp32 moments: 12 bytes each."""
    p = torch.nn.Parameter(torch.randn(4, 4).to(torch.bfloat16))
    opt = ZeroAdam([p], lr=1e-3, stage=0, rank=0, world=1)
    st = opt.state[p]
    assert {k: v.dtype for k, v in st.items()} == {k: torch.float32 for k in ("master", "exp_avg", "exp_avg_sq")}
    assert sum(v.numel() * v.element_size() for v in st.values()) == 12 * p.numel()


@pytest.fixture(scope="module")
def stages():
    return run_states(["ddp", "zero1", "zero2", "fsdp:2"], 2, 32, 2, 8, 0, "bf16-mixed", "cpu", 240.0)


def test_each_stage_holds_its_formula_bytes_at_rest(stages):
    """On 2 ranks stages 0-3 hold 16, 4 + 12/2, 2 + 14/2 and 16/2 bytes per parameter (ZeRO §5)."""
    for r in stages:
        got = [total_bytes(r[m]) / r[m]["Psi"] for m in ("ddp", "zero1", "zero2", "fsdp:2")]
        assert got == [16.0, 10.0, 9.0, 8.0]


def test_sharded_stages_keep_replicas_identical(stages):
    """After three steps every rank's parameters agree bit for bit under every stage."""
    assert all(r[m]["spread"] == 0.0 for r in stages for m in r)


def test_stages_one_and_two_send_what_ddp_sends(stages):
    """Reduce-scatter plus all-gather moves as many ring bytes as DDP's all-reduce (ZeRO §7.2.1)."""
    for r in stages:
        assert wire_sent(r["zero1"]) == wire_sent(r["ddp"]) == wire_sent(r["zero2"])


def _gather_written(ctx, n: int) -> int:
    """Bytes this rank wrote to its sockets during one all-gather of n fp32 values."""
    import torch.distributed as dist

    from verifiers.lab.dist import bytes_written

    out, mine = torch.empty(n), torch.ones(n // ctx.world)
    dist.all_gather_into_tensor(out, mine)  # warm-up: connections and buffers
    dist.barrier()
    before = bytes_written()
    dist.all_gather_into_tensor(out, mine)
    return bytes_written() - before


def test_socket_bytes_of_an_all_gather_are_half_its_payload_on_two_ranks():
    """A 1 MB all-gather on 2 gloo ranks writes (n−1)/n of it, 0.5 MB, plus headers, per rank."""
    for written in run_ranks(_gather_written, world=2, timeout_s=60, n=1 << 18):
        assert 0.5 * (1 << 20) <= written <= 0.51 * (1 << 20)
