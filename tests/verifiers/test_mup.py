"""μP on the MLP n-gram stack (verifiers.lab.mup)."""
import torch

from verifiers.lab.batched import BatchedAdamW
from verifiers.lab.mup import MuAdam, MuNGramStack
from verifiers.lab.stacks import NGramStack


def _ctx() -> torch.Tensor:
    return torch.randint(0, 8, (2, 5, 2), generator=torch.Generator().manual_seed(0))


def test_mup_at_base_width_is_the_standard_model():
    """At width = base width the μP stack computes the same logits as the standard one."""
    sp = NGramStack(8, 2, 16, [12, 12], 2, [0, 1], "cpu")
    mu = MuNGramStack(8, 2, 16, 12, 2, 2, [0, 1], 12, "cpu")
    assert torch.allclose(sp(_ctx()), mu(_ctx()))


def test_mup_scales_only_hidden_weights_rates():
    """The per-coordinate rate is 1/m on the hidden matrix and 1 elsewhere."""
    mu = MuNGramStack(8, 2, 16, 48, 1, 2, [0], 12, "cpu")
    s = mu.lr_scale()
    a, n = mu.offsets["W1"], 48 * 48
    assert torch.all(s[a:a + n] == 0.25) and torch.all(s[:a] == 1) and torch.all(s[a + n:] == 1)


def test_mu_adam_at_base_width_matches_adam():
    """One MuAdam step at m = 1 moves the weights exactly as BatchedAdamW does."""
    nets = [MuNGramStack(8, 2, 16, 12, 1, 2, [0], 12, "cpu") for _ in range(2)]
    opts = [MuAdam(nets[0], (0.9, 0.95)), BatchedAdamW(nets[1], (0.9, 0.95))]
    for net, opt in zip(nets, opts):
        net(_ctx()[:1]).sum().backward()
        opt.step(torch.tensor([0.01]), torch.tensor([0.0]))
    assert torch.allclose(nets[0].flat, nets[1].flat)


def test_readout_init_shrinks_as_one_over_width():
    """The effective readout (weights / m) has a standard deviation ∝ 1/width."""
    sd = [(MuNGramStack(8, 2, 16, w, 1, 2, [0], 16, "cpu").p("W2")[0] / (w / 16)).std().item()
          for w in (16, 256)]
    assert 0.7 < (sd[0] / sd[1]) / 16 < 1.4
