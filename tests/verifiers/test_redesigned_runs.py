"""The redesigned run claims' verifiers on tiny settings: every quantity measured, replication
reported with the data draw as the unit."""
from verifiers import batch_lr, compute_optimal, critical_batch, schedules


def test_batch_allows_lr_reports_both_designs_over_draws():
    """Both slopes are finite and the replication counts draws and nested seeds."""
    ev = batch_lr.batch_allows_lr(optimiser="sgd", momentum=0.9, V=6, order=2, alpha=0.5, support=3,
                                  data_draws=[0, 1], d_hidden=8, B_grid=[4, 16], examples=64,
                                  fixed_steps=4, lr_grid=[0.05, 0.1, 0.2], seeds=[0], device="cpu")
    assert ev.measured["slope_fixed_steps"].finite() and ev.measured["slope_equal_examples"].finite()
    assert ev.replication["data_draws"] == 2 and ev.replication["seeds"] == 1


def test_critical_batch_size_compares_widths_at_equal_loss():
    """The size comparison is a log2 ratio with an interval over draws."""
    ev = critical_batch.critical_batch_size(
        V=6, order=2, alpha=0.5, support=3, data_draws=[0, 1], d_hidden=16, size_widths=[8, 32],
        size_target_frac=0.6, B_grid=[8, 32, 128], B_alt=[8, 32, 128], B_large=128, lr_centre=0.02,
        B_ref=8, lr_exponent=0.5, lr_factors=[1.0, 2.0], target_fracs=[0.7, 0.6], max_steps=300,
        fixed_steps_large=60, seeds=[0], device="cpu")
    m = ev.measured["log2_bcrit_size_ratio"]
    assert m.n == 2 and ev.replication["data_draws"] == 2


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
