"""Chapter 17's comparison: GPT-2's block against the modern (Llama-style) block, one change at a time.

    python scripts/ablate_blocks.py                      # writes data/block_ablation.json
    python scripts/ablate_blocks.py --steps 2 --seeds 0 --eval-iters 1 --out X.json   # a smoke run

Every variant is the book's GPT (helpers.gpt) trained the same way on the book's corpus at character level
(helpers.corpus: Python's documentation, split 90/10 in order): same steps, batch, context, learning-rate
schedule and seeds. Equal parameters: each variant's MLP width (mlp_hidden) is chosen so that its total
parameter count is as close as possible to the baseline's (the script asserts within 2 %), so a change that
saves weights elsewhere (GQA's smaller k, v; RoPE's missing position table) spends them on the MLP. All
variants have no biases and a tied head, the book's chapter 18 recipe, so only the named change differs.

    gpt2     LayerNorm, GELU MLP, learned positions, 4 query = 4 key/value heads
    rmsnorm  RMSNorm instead of LayerNorm
    swiglu   SwiGLU instead of the GELU MLP
    rope     RoPE inside attention instead of the learned position table
    gqa      2 key/value heads for the 4 query heads
    modern   all four together (a Llama-style block)

The result (data/block_ablation.json) holds, per variant and seed, the final validation loss on a fixed
subset of the validation text, the parameter count and the training seconds, plus the settings.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from helpers.corpus import CharVocab, load_corpus, train_val_split
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import TrainConfig, estimate_loss, make_adamw, train

VARIANTS = {
    "gpt2": {},
    "rmsnorm": {"norm": "rmsnorm"},
    "swiglu": {"mlp": "swiglu"},
    "rope": {"position": "rope"},
    "gqa": {"n_kv_head": 2},
    "modern": {"norm": "rmsnorm", "mlp": "swiglu", "position": "rope", "n_kv_head": 2},
}


def matched_config(base: GPTConfig, change: dict) -> GPTConfig:
    """`base` with `change`, its mlp_hidden (a multiple of 8) chosen to match base's parameter count."""

    def count(config: GPTConfig) -> int:
        with torch.device("meta"):  # no memory, no initialisation: only the shapes
            return GPT(config).num_parameters()

    target = count(base)
    n8, n16 = (count(GPTConfig(**{**asdict(base), **change, "mlp_hidden": h})) for h in (8, 16))
    per_unit = (n16 - n8) / 8  # the count is linear in the MLP width
    hidden = max(8, 8 * round((8 + (target - n8) / per_unit) / 8))
    return GPTConfig(**{**asdict(base), **change, "mlp_hidden": hidden})


def run(steps: int, seeds: list[int], out: Path, threads: int, eval_iters: int = 20) -> dict:
    torch.set_num_threads(threads)
    text = load_corpus()
    vocab = CharVocab.from_text(text)
    train_text, val_text = train_val_split(text)
    train_data = torch.tensor(vocab.encode(train_text))
    val_data = torch.tensor(vocab.encode(val_text))
    base = GPTConfig(
        vocab_size=vocab.size, block_size=64, n_layer=3, n_head=4, n_embd=64, bias=False, mlp_hidden=256
    )
    tc = TrainConfig(
        max_steps=steps,
        batch_size=16,
        lr=3e-3,
        min_lr=3e-4,
        warmup_steps=max(1, steps // 10),
        eval_interval=steps,
        eval_iters=eval_iters,
        eval_batch_size=32,
        eval_train=False,
    )
    target = GPT(base).num_parameters()
    results: dict[str, dict] = {}
    for name, change in VARIANTS.items():
        config = matched_config(base, change)
        runs = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = GPT(config)
            n = model.num_parameters()
            assert abs(n - target) / target < 0.02, (name, n, target)
            tc_seed = TrainConfig(**{**asdict(tc), "seed": seed})
            began = time.perf_counter()
            train(model, make_adamw(model, tc_seed), train_data, val_data, tc_seed, progress=False)
            seconds = time.perf_counter() - began
            val = estimate_loss(
                model, val_data, iters=2 * eval_iters, batch_size=32, block_size=64, seed=2024
            )
            runs.append({"seed": seed, "val_loss": round(val, 4), "seconds": round(seconds, 1)})
            print(f"{name:8s} seed {seed}: params {n:,}  val {val:.4f}  {seconds:.1f} s", flush=True)
        results[name] = {
            "change": change,
            "mlp_hidden": config.mlp_hidden,
            "parameters": GPT(config).num_parameters(),
            "runs": runs,
            "mean_val_loss": round(sum(r["val_loss"] for r in runs) / len(runs), 4),
        }
    report = {
        "settings": {
            "corpus": "helpers.corpus.load_corpus(), characters, 90/10 split",
            "base": asdict(base),
            "train": asdict(tc),
            "seeds": seeds,
            "val": f"{2 * eval_iters} batches x 32 windows of 64 characters, generator seed 2024",
            "threads": threads,
        },
        "variants": results,
    }
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-iters", type=int, default=20, help="batches per evaluation (final: twice)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "block_ablation.json"
    )
    args = parser.parse_args(argv)
    run(args.steps, args.seeds, args.out, args.threads, args.eval_iters)


if __name__ == "__main__":
    main()
