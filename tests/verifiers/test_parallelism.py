"""Data parallelism: ZeRO's formulas, FSDP's traffic, checksum analysis and the rank launcher."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from principia.formulas import zero_bytes_per_gpu
from verifiers.lab import dist as lab
from verifiers.lab.dist import DistError, RankCtx, run_ranks, wire_bytes
from verifiers.faults import _checksums, _flip_bit, analyse_checksums, plan_faults
from verifiers.lab.ranks import square_mlp as _mlp
from verifiers.parallelism import predicted_wire, zero_reduction

fast = settings(max_examples=50, deadline=None)
ranks = st.integers(min_value=1, max_value=4096)


# --- ZeRO and FSDP arithmetic ------------------------------------------------------------------


def test_zero_reproduces_figure_1():
    """Ψ = 7.5B on 64 ranks with K = 12 gives ZeRO Fig. 1's 120, 31.4, 16.6 and 1.9 GB per device."""
    gb = [zero_bytes_per_gpu(7.5e9, 64, s) / 1e9 for s in (0, 1, 2, 3)]
    assert [round(x, 1) for x in gb] == [120.0, 31.4, 16.6, 1.9]


def test_stage_limits_are_four_and_eight():
    """With 2 + 2 + 12 bytes per parameter the stage-1 and stage-2 reductions tend to 4× and 8×."""
    assert zero_reduction(1e12, 1) == pytest.approx(4, rel=1e-9)
    assert zero_reduction(1e12, 2) == pytest.approx(8, rel=1e-9)
    assert zero_reduction(64, 1) == pytest.approx(16 / (4 + 12 / 64))


@fast
@given(K=ranks)
def test_stages_1_and_2_stay_below_their_limits(K):
    """At every K the stage-1 and stage-2 reductions are at most 4× and 8×, and stage 3 gives K."""
    assert zero_reduction(K, 1) <= 4 and zero_reduction(K, 2) <= 8
    assert zero_reduction(K, 3) == pytest.approx(K)


@fast
@given(K=st.integers(min_value=1, max_value=1000))
def test_reduction_grows_with_the_ranks(K):
    """Adding a rank never lowers any stage's reduction."""
    for s in (1, 2, 3):
        assert zero_reduction(K + 1, s) >= zero_reduction(K, s)


@fast
@given(S=st.floats(min_value=1, max_value=1e12), n=st.integers(min_value=1, max_value=1024))
def test_all_reduce_is_reduce_scatter_plus_all_gather(S, n):
    """A ring all-reduce sends what a reduce-scatter and an all-gather send together."""
    assert wire_bytes("all_reduce", S, n) == pytest.approx(
        wire_bytes("reduce_scatter", S, n) + wire_bytes("all_gather", S, n))


def test_one_rank_sends_nothing():
    """A collective over a group of one moves no bytes."""
    assert wire_bytes("all_reduce", 1e6, 1) == 0


@fast
@given(K=st.sampled_from([2, 4, 8, 16, 64, 512]))
def test_full_sharding_sends_one_and_a_half_times_ddp(K):
    """Gathering twice and reduce-scattering once is 1.5× DDP's all-reduce (ZeRO §7.2.2)."""
    assert predicted_wire(f"fsdp:{K}", K, 1.0) / predicted_wire("ddp", K, 1.0) == pytest.approx(1.5)
    assert predicted_wire(f"fsdp:{K}:keep", K, 1.0) == pytest.approx(predicted_wire("ddp", K, 1.0))
    assert predicted_wire("fsdp:1", K, 1.0) == pytest.approx(predicted_wire("ddp", K, 1.0))


# --- checksums -------------------------------------------------------------------------------


@fast
@given(bit=st.integers(min_value=0, max_value=31), index=st.integers(min_value=0, max_value=15))
def test_exact_checksum_moves_by_two_to_the_bit(bit, index):
    """Flipping bit b of one weight moves the exact checksum by exactly 2^b (never 0)."""
    model = _mlp(4, 1, seed=0)
    before = int(_checksums(model, exact=True)[0])
    _flip_bit(next(model.parameters()).data, index, bit)
    assert abs(int(_checksums(model, exact=True)[0]) - before) == 2 ** bit


def test_float_sum_misses_a_low_bit_flip():
    """A float32 sum of the weights does not see the lowest mantissa bit of one weight change."""
    model = _mlp(16, 1, seed=0)
    before = _checksums(model, exact=False).clone()
    _flip_bit(next(model.parameters()).data, 5, 0)
    assert torch.equal(_checksums(model, exact=False), before)


def _table(T=6, K=3, L=2, fault=None) -> np.ndarray:
    sums = np.tile(np.arange(L, dtype=np.int64), (T, K, 1)) * 1000
    if fault:
        sums[fault["step"]:, fault["rank"], fault["layer"]] += 8
    return sums


def test_majority_names_the_faulty_rank_and_layer():
    """With three replicas the odd one out is found at its step, in its layer."""
    f = {"rank": 2, "step": 3, "layer": 1}
    r = analyse_checksums(_table(fault=f), f)
    assert (r["first"], r["detected"], r["localised"], r["identified"]) == (3, True, True, True)
    assert r["false_alarms"] == 0


def test_two_replicas_cannot_name_the_faulty_one():
    """With two replicas a mismatch is detected but no rank can be named."""
    f = {"rank": 0, "step": 2, "layer": 0}
    r = analyse_checksums(_table(K=2, fault=f), f)
    assert r["detected"] and not r["identified"]


def test_a_clean_run_raises_no_alarm():
    """Replicas that agree at every step give no alarm."""
    r = analyse_checksums(_table(), None)
    assert r["first"] is None and r["false_alarms"] == 0 and r["checks"] == 12


def test_fault_plan_is_seeded_and_in_range():
    """The fault plan repeats for a seed and puts every fault inside the run."""
    a = plan_faults([0, 1], [0, 31], K=3, T=10, L=3, d=16)
    assert a == plan_faults([0, 1], [0, 31], K=3, T=10, L=3, d=16)
    faults = [t["fault"] for t in a if t["fault"]]
    assert len(faults) == 4 and sum(t["fault"] is None for t in a) == 2
    assert all(0 <= f["rank"] < 3 and 1 <= f["step"] < 9 and f["index"] < 256 for f in faults)


# --- the rank launcher -----------------------------------------------------------------------


def _probe(ctx: RankCtx) -> dict:
    """Rank side: one all-reduce, counted."""
    import torch.distributed as dist

    t = torch.tensor([float(ctx.rank + 1)])
    with lab.count_collectives() as log:
        dist.all_reduce(t)
    return {"rank": ctx.rank, "world": ctx.world, "sum": float(t), "log": log,
            "threads": torch.get_num_threads(), "backend": ctx.backend}


def _boom(ctx: RankCtx) -> None:
    if ctx.rank == 1:
        raise ValueError("boom on rank 1")
    time.sleep(60)


@pytest.fixture(scope="module")
def probed():
    return run_ranks(_probe, world=2, timeout_s=60)


@pytest.mark.slow
def test_ranks_return_in_rank_order(probed):
    """Each rank's result comes back in rank order, from a gloo group of two."""
    assert [(r["rank"], r["world"], r["backend"]) for r in probed] == [(0, 2, "gloo"), (1, 2, "gloo")]


@pytest.mark.slow
def test_ranks_share_a_working_process_group(probed):
    """An all-reduce across the two ranks sums their values on both."""
    assert [r["sum"] for r in probed] == [3.0, 3.0]


@pytest.mark.slow
def test_collectives_are_counted_with_payload_and_group(probed):
    """count_collectives records the all-reduce's kind, bytes and group size."""
    assert probed[0]["log"] == [("all_reduce", 4, 2)]


@pytest.mark.slow
def test_ranks_run_single_threaded(probed):
    """Every rank runs torch with one thread."""
    assert all(r["threads"] == 1 for r in probed)


@pytest.mark.slow
def test_a_failing_rank_fails_the_job_fast():
    """An exception on one rank ends the job with its traceback, long before the deadline."""
    t = time.monotonic()
    with pytest.raises(DistError, match="boom on rank 1"):
        run_ranks(_boom, world=2, timeout_s=60)
    assert time.monotonic() - t < 30


def test_deadline_stops_running_ranks(tmp_path):
    """Ranks still running at the deadline are reported and killed."""
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              start_new_session=True) for _ in range(2)]
    with pytest.raises(DistError, match="timed out"):
        try:
            lab._wait(procs, tmp_path, time.monotonic() + 0.3)
        finally:
            lab._kill(procs)
    assert all(p.poll() is not None for p in procs)


def test_rank_function_must_be_importable():
    """A lambda cannot be sent to a fresh process and is refused up front."""
    with pytest.raises(ValueError, match="importable"):
        run_ranks(lambda ctx: None, world=2)


def test_a_failed_rendezvous_is_retried(monkeypatch):
    """A job whose ranks could not meet is launched again, on a new port."""
    calls = []

    def launch(*args):
        calls.append(args)
        if len(calls) == 1:
            raise lab._RendezvousError("rank 0: address already in use")
        return ["ok", "ok"]

    monkeypatch.setattr(lab, "_launch", launch)
    assert run_ranks(_probe, world=2) == ["ok", "ok"] and len(calls) == 2


def test_a_timeout_is_not_retried(monkeypatch):
    """A job that ran past its deadline fails at once instead of running again."""
    calls = []

    def launch(*args):
        calls.append(args)
        raise DistError("distributed job timed out waiting for ranks [1]")

    monkeypatch.setattr(lab, "_launch", launch)
    with pytest.raises(DistError, match="timed out"):
        run_ranks(_probe, world=2)
    assert len(calls) == 1
