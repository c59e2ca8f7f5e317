"""The redesigned run claims' verifiers on tiny settings: every quantity measured, replication
reported with the data draw as the unit."""
from verifiers import batch_lr, compute_optimal, critical_batch, schedules


DATA = {"markov": {"V": 6, "order": 2, "alpha": 0.5, "support": 3},
        "text": {"held_out_frac": 0.1, "train_bytes": 60000, "val_bytes": 20000}}
GPT = {"T": 8, "n_layer": 1, "n_head": 2, "d_max": 8, "betas": [0.9, 0.95], "weight_decay": 0.0,
       "eval_seqs": 8}


def test_batch_allows_lr_reports_both_designs_over_draws():
    """Both slopes and their gap are finite on both sources; replication counts draws; the scale
    names the text corpus and the Markov source and the model the budget affords."""
    ev = batch_lr.batch_allows_lr(data=DATA, sources=["text", "markov"], gpt=GPT, flops=6e7,
                                  B_grid=[2, 4], lr_grid=[0.003, 0.01, 0.03], fixed_steps=3,
                                  examples=64, data_draws=[0, 1], seeds=[0], device="cpu")
    for kind in ("text", "markov"):
        for key in ("slope_fixed_steps", "slope_equal_examples", "slope_gap"):
            assert ev.measured[f"{key}_{kind}"].finite() and ev.measured[f"{key}_{kind}"].n == 2
    assert ev.replication["data_draws"] == 2 and ev.replication["seeds"] == 1
    assert ev.scale["data"] == ["text:cpython-source", "markov:V6-order2"]
    assert ev.scale["max_params"] == ev.table[0]["N"]


def test_critical_batch_size_compares_two_sizes_at_equal_loss():
    """The size comparison is a log2 ratio over draws between the two budgeted sizes, which are
    span decades apart."""
    ev = critical_batch.critical_batch_size(
        data=DATA, sources=["markov"], gpt=GPT, flops=3e8, n_sizes=2, span=0.5, B_grid=[2, 8, 32],
        steps=[30, 10, 5], n_evals=5, lr_ref=0.01, B_ref=8, lr_exponent=0.5,
        lr_factors=[1.0, 2.0], target_fracs=[0.5, 0.4], size_target_frac=0.5, data_draws=[0, 1],
        seeds=[0], device="cpu")
    m = ev.measured["log2_bcrit_size_ratio_markov"]
    assert m.n == 2 and ev.replication["data_draws"] == 2
    small, large = ev.table[0]["N"], ev.table[1]["N"]
    assert large / small >= 10 ** 0.5 * 0.7


def test_lr_vs_model_size_has_both_parametrisations():
    """SP and μP slopes on Markov and the SP slope on real text are reported, per draw."""
    ev = schedules.lr_vs_model_size(gpt3_lr=[6e-4, 3e-4], gpt3_d_model=[768, 1024], V=6, order=2,
                                    alpha=0.5, support=3, data_draws=[0, 1], widths=[8, 16],
                                    n_layers=2, B=8, steps=10, warmup_frac=0.1,
                                    lr_grid=[0.01, 0.03, 0.1], seeds=[0], text_bytes=200_000,
                                    held_out_frac=0.1, text_flops=2e8, text_sizes=2, text_span=0.5,
                                    gpt_layers=1, n_head=2, d_max=32, T=8, text_batch=4, text_steps=6,
                                    text_lr_grid=[0.003, 0.01, 0.03], eval_seqs=8, device="cpu")
    assert ev.measured["slope_lr_vs_width"].finite() and ev.measured["slope_lr_vs_width_mup"].finite()
    assert ev.measured["slope_lr_vs_width_text"].n == 2
    assert ev.scale["data"] == ["markov:V6-order2", "text:cpython-source"]


def test_isoflop_reports_both_counts_of_n_and_chinchilla_ratio():
    """a with and without embeddings and D/N against 20 are measured per draw."""
    ev = compute_optimal.isoflop_tiny(budgets=[2e6, 4e6, 8e6], widths=[[1, 2, 4, 8]] * 3,
                                      data_draws=[0, 1], seeds=[0], lr_grid=[0.01, 0.03],
                                      chinchilla_tokens_per_param=20, device="cpu")
    for key in ("a", "a_with_embeddings", "a_count_sensitivity", "tokens_per_param_vs_chinchilla"):
        assert key in ev.measured
    assert ev.replication["data_draws"] == 2
