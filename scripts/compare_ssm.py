"""Train the book's GPT and a selective-SSM language model side by side: equal size, steps, batch, context.

    python scripts/compare_ssm.py

That exact command made data/ssm_vs_gpt.json, which chapter 28 reads (and re-checks: it trains the first
steps of both models again and compares them with the logged losses). The two models, on the book's corpus
(Python's documentation, one token per character):

- GPT (helpers.gpt): 2 layers x 4 heads x 64 wide, context 64, no biases, tied embeddings;
- SSMLM (helpers.ssm): 3 Mamba-style blocks 64 wide (SSM on 128 channels, 16 states each), tied embeddings,
  the parameter count within 2 % of the GPT's.

Both: the same TrainConfig (steps, batch of 16 windows of 64 characters, AdamW, warm-up and cosine from
3e-3 to 3e-4, clipping at 1), seed 0, evaluated on the same fixed validation windows every --eval-interval
steps. The file also records the wall time per training step of each model, measured in this run, and the
machine it ran on. Use --steps and --out for a short trial run (the tests do).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from helpers.corpus import CharVocab, load_corpus, train_val_split
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import TrainConfig, make_adamw, train
from helpers.ssm import SSMLM, SSMConfig

BATCH, CONTEXT, LR, MIN_LR, WARMUP = 16, 64, 3e-3, 3e-4, 20


def models(vocab_size: int) -> dict[str, torch.nn.Module]:
    """The two models, each built right after torch.manual_seed(0)."""
    torch.manual_seed(0)
    gpt = GPT(
        GPTConfig(vocab_size=vocab_size, block_size=CONTEXT, n_layer=2, n_head=4, n_embd=64, bias=False)
    )
    torch.manual_seed(0)
    ssm = SSMLM(SSMConfig(vocab_size=vocab_size, block_size=CONTEXT, n_layer=3, n_embd=64, d_state=16))
    return {"gpt": gpt, "ssm": ssm}


def train_config(steps: int, eval_interval: int, eval_iters: int = 20) -> TrainConfig:
    return TrainConfig(
        max_steps=steps,
        batch_size=BATCH,
        lr=LR,
        min_lr=MIN_LR,
        warmup_steps=min(WARMUP, steps - 1),
        eval_interval=eval_interval,
        eval_iters=eval_iters,
        eval_train=False,
        amp="none",
        seed=0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--eval-interval", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "data/ssm_vs_gpt.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = load_corpus()
    vocab = CharVocab.from_text(text)
    train_text, val_text = train_val_split(text)
    train_data, val_data = vocab.tensor(train_text), vocab.tensor(val_text)
    tc = train_config(args.steps, args.eval_interval)
    result = {
        "command": "python scripts/compare_ssm.py",
        "machine": f"{platform.machine()}, {args.threads} threads, torch {torch.__version__}",
        "steps": tc.max_steps,
        "batch_size": BATCH,
        "block_size": CONTEXT,
        "lr": LR,
        "models": {},
    }
    for name, model in models(vocab.size).items():
        began = time.perf_counter()
        state = train(model, make_adamw(model, tc), train_data, val_data, tc)
        seconds = time.perf_counter() - began
        h = state.history
        result["models"][name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "config": {k: v for k, v in vars(model.config).items()},
            "step_loss": [round(x, 5) for x in h.step_loss],
            "eval_step": h.eval_step,
            "val_loss": [round(x, 5) for x in h.val_loss],
            "train_seconds": round(seconds, 2),
            "seconds_per_step": round((seconds - sum(h.eval_seconds)) / tc.max_steps, 4),
        }
        print(f"{name}: val loss {h.val_loss[-1]:.3f} after {tc.max_steps} steps, {seconds:.0f} s")
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
