"""Print the training stack's speed on this machine, all figures from one run.

    .venv/bin/python benchmarks/bench_harness.py [--threads 1] [--steps 60] [--json]

1. K = 8 tiny MLP language models (~3k parameters) trained together by ``verifiers.lab.batched``
   against the same 8 trained one after another as ``nn.Module``s with ``torch.optim.AdamW``
   (the same tokens, drawn beforehand): wall time of each (best of 3) and the speed-up, at 16×16
   tokens a step (the claims' size) and at larger batches, where the members become compute-bound.
2. Tokens per second of one GPT member at a ladder of sizes (what the machine allows), and the
   achieved FLOP/s (6·N·tokens / time, N counting every weight, Kaplan et al. 2020 §2.1) at the
   largest size the full tier trains (GPT members of ``lm.train_lm`` on bytes of text: 2 layers,
   d = 96, context 64, batch 16) as a fraction of the fp32 matmul rate (1024², same run).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verifiers.lab.batched import BatchedAdamW, lr_table, train  # noqa: E402
from verifiers.lab.data import MarkovSource  # noqa: E402
from verifiers.lab.gpt import GPT, GPTConfig, lm_loss  # noqa: E402
from verifiers.lab.stacks import GPTStack, MLPStack  # noqa: E402
from verifiers.lab.train import MLPLM  # noqa: E402

V, K_WINDOW, D_EMB, WIDTH = 32, 2, 16, 32  # ~3k-parameter MLP members
GPT_SIZES = [(2, 64), (4, 128), (4, 192)]  # (layers, width): ~0.1M, ~0.8M, ~1.8M weights
B, T = 32, 32  # GPT batch
TINY = [(16, 16), (32, 16), (32, 32)]  # MLP members' batches (sequences × tokens); the first is
# the headline: the run claims train their tiny members on 256-512 tokens a step
REPEATS = 3  # each arm's time is the best of this many runs (the machine is shared)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _batches(src: MarkovSource, K: int, steps: int, B: int, T: int) -> torch.Tensor:
    """(steps, K, B, T+1) tokens, one stream per member."""
    return torch.stack([src.sample(steps * B, T + 1, np.random.default_rng(s)).view(steps, B, T + 1)
                        for s in range(K)], dim=1)


def ensemble_speedup(K: int, src: MarkovSource, steps: int, B: int, T: int,
                     repeats: int = REPEATS) -> tuple[float, float]:
    """Seconds for K MLP members: one after another (nn.Module + torch AdamW), and batched; each
    the best of `repeats` runs, the two arms alternating (other load on the machine only adds)."""
    data = _batches(src, K, steps, B, T)

    def loop() -> None:
        for s in range(K):
            torch.manual_seed(s)
            model = MLPLM(V, K_WINDOW, D_EMB, WIDTH, 1)
            opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95))
            for step in range(steps):
                x = data[step, s]
                loss = lm_loss(model(x[:, :-1]), x[:, 1:])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    def batched() -> None:
        stack = MLPStack(V, K_WINDOW, D_EMB, [WIDTH] * K, 1, range(K), "cpu")
        train(stack, BatchedAdamW(stack, (0.9, 0.95)),
              lambda step, act: (data[step, act, :, :-1], data[step, act, :, 1:]),
              lr_table([3e-3] * K, [steps] * K, "constant"), [steps] * K, [0.0] * K)
    times = [(_timed(loop), _timed(batched)) for _ in range(repeats)]
    return min(t[0] for t in times), min(t[1] for t in times)


def gpt_rate(src: MarkovSource, n_layer: int, d: int, steps: int) -> tuple[int, float]:
    """(N, tokens per second) of one GPT member of the batched stack, vocabulary V, context T."""
    cfg = GPTConfig(vocab_size=V, n_ctx=T, n_layer=n_layer, d_model=d, n_head=4)
    stack = GPTStack(cfg, [0], "cpu")
    data = _batches(src, 1, steps, B, T)
    fit = lambda: train(stack, BatchedAdamW(stack, (0.9, 0.95)),
                        lambda step, act: (data[step, :, :, :-1], data[step, :, :, 1:]),
                        lr_table([1e-3], [steps], "constant"), [steps], [0.0])
    return int(stack.flat.shape[1]), steps * B * T / _timed(fit)


def full_tier_largest(steps: int) -> tuple[int, int, float]:
    """(N without embeddings, N with every weight, achieved FLOP/s) of the full tier's largest
    members: one GPT of 2 layers, d = 96, on bytes of text (V = 256, context 64, batch 16),
    trained by ``lm.train_lm`` (its held-out scoring at the end included). FLOPs = 6·N·tokens
    with N every weight, the tied head included (the ladder's count)."""
    from verifiers.lab.lm import LMSetting, heldout, train_lm
    from verifiers.lab.text import TextSource
    cfg = GPTConfig(vocab_size=256, n_ctx=64, n_layer=2, d_model=96, n_head=4)
    setting = LMSetting(batch=16, T=64, betas=(0.9, 0.95), weight_decay=0.1)
    src, val = TextSource("train", 0.1, 2_000_000), TextSource("val", 0.1, 2_000_000)
    windows = heldout(val, 16, setting.T, 0)
    t = time.perf_counter()
    run = train_lm(cfg, src, setting, [steps], [1e-3], [0], [1], "cpu", windows)
    seconds = time.perf_counter() - t
    n_all = sum(p.numel() for p in GPT(cfg).parameters())
    return run.N, n_all, 6 * n_all * steps * setting.tokens_per_step / seconds


def matmul_flops(n: int = 1024, reps: int = 20) -> float:
    """fp32 FLOP/s of an n×n by n×n matmul (2n³ FLOPs each)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    return 2 * n ** 3 * reps / _timed(lambda: [a @ b for _ in range(reps)])


def measure(threads: int, steps: int) -> dict:
    torch.set_num_threads(threads)
    src = MarkovSource(V=V, order=2, alpha=0.5, seed=0, support=8)
    ensemble_speedup(2, src, 3, 4, 4, 1)  # first-use imports and allocations
    tiny = {f"{b}x{t}": ensemble_speedup(8, src, steps, b, t) for b, t in TINY}
    loop, batched = tiny[f"{TINY[0][0]}x{TINY[0][1]}"]
    ladder = [gpt_rate(src, L, d, max(4, steps // 4)) for L, d in GPT_SIZES]
    peak = matmul_flops()
    N, n_all, achieved = full_tier_largest(steps)
    return {"threads": threads, "steps": steps, "loop_s_k8": loop, "batched_s_k8": batched,
            "ensemble_speedup_k8": loop / batched, "ensemble_batch": TINY[0][0] * TINY[0][1],
            "speedup_k8_by_batch": {k: lp / bt for k, (lp, bt) in tiny.items()}, "matmul_flops": peak,
            "tokens_per_s": {str(n): r for n, r in ladder},
            "gpt_flops_fraction": {str(n): 6 * n * r / peak for n, r in ladder},
            "largest_params": N, "largest_params_all": n_all,
            "flops_fraction_largest": achieved / peak}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the engine)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    out = measure(args.threads, args.steps)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps of {B}×{T} tokens")
    print(f"K=8 MLP members: loop {out['loop_s_k8']:.2f} s, batched {out['batched_s_k8']:.2f} s "
          f"({out['ensemble_speedup_k8']:.2f}×); by batch: "
          + ", ".join(f"{k} {v:.2f}×" for k, v in out["speedup_k8_by_batch"].items()))
    for n, r in out["tokens_per_s"].items():
        print(f"GPT member of {int(n):,} weights: {r:,.0f} tokens/s")
    print(f"fp32 matmul 1024²: {out['matmul_flops'] / 1e9:.1f} GFLOP/s; the full tier's largest "
          f"members (N = {out['largest_params']:,} without embeddings, {out['largest_params_all']:,} "
          f"weights) reach {out['flops_fraction_largest']:.1%} of it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
