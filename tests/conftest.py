"""Shared test set-up: headless matplotlib, and the repository's paths."""

from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def random_hf_gpt2(
    vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int, seed: int = 0, **extra
):
    """A randomly initialised transformers GPT2LMHeadModel (no dropout, GPT-2's tanh GELU) in eval mode:
    the oracle that the book's GPT, its loader and its generation are compared with."""
    from transformers import GPT2Config, GPT2LMHeadModel  # slow to import: only the tests that need it pay

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=block_size,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **extra,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()
