"""Write data/lora_rank_sweep.json: chapter 20's instruction tuning, with LoRA at several ranks.

    python data/make_lora_sweep.py

Each run does what notebooks/20_finetuning.ipynb does: copy the shipped GPT (helpers.checkpoints, with
PyTorch's fused LayerNorm), tune it on the book's instruction set (helpers.instructions, with
helpers.lora's adapters) with the chapter's steps, batch, learning rate, clipping and seeds, then measure
exact match on the held-out words and the loss on the validation text (how much of the documentation the
model still predicts). The runs:

    full           full fine-tuning, the loss on the response only (the chapter's 20.3)
    full_unmasked  the same, with the loss on every token, prompt included (why the chapter masks)
    runs           LoRA on the attention layers at ranks 1, 2, 4, 8, 16 (the chapter runs rank 4; the rank
                   slider of 20.6 shows them all)
    lora_short     LoRA at the chapter's rank, for only as many steps as full fine-tuning gets

The chapter checks that its own full and rank-4 runs agree with this file. Then update data/MANIFEST.sha256
(`sha256sum data/lora_rank_sweep.json`). About 3 minutes on a 2-core CPU; on one machine the file is the
same byte for byte every time (it holds no timings). `--steps 10 --ranks 1 --out /tmp/x.json` is a quick
trial run (the tests make one).
"""

import argparse
import copy
import json
from pathlib import Path

import torch

from helpers import instructions as ins
from helpers import lora as lo
from helpers.checkpoints import load_shipped_gpt
from helpers.corpus import load_corpus, train_val_split
from helpers.pretrain import estimate_loss, use_fused_layernorm
from helpers.runtime import setup
from helpers.train import trainable_parameters

# the chapter's settings (notebooks/20_finetuning.ipynb asserts that it uses the same)
SETTINGS = {
    "n_test_words": 100,
    "batch_size": 32,
    "grad_clip": 1.0,
    "full_steps": 300,
    "full_lr": 1e-3,
    "lora_steps": 600,
    "lora_lr": 1e-2,
    "lora_alpha": 8.0,
    "lora_targets": ["attn.c_attn", "attn.c_proj"],
    "chapter_rank": 4,
    "seed": 0,
}
RANKS = (1, 2, 4, 8, 16)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("lora_rank_sweep.json"))
    parser.add_argument("--steps", type=int, help="a trial run: this many steps for every run (not shipped)")
    parser.add_argument("--ranks", type=int, nargs="+", default=list(RANKS), help="LoRA ranks to sweep")
    args = parser.parse_args(argv)
    cfg = setup(seed=0, device="cpu", quiet=True)
    s = dict(SETTINGS)
    if args.steps is not None:
        s.update(full_steps=args.steps, lora_steps=args.steps)
    pretrained, vocab, _ = load_shipped_gpt(cfg.device)
    use_fused_layernorm(pretrained)
    text = load_corpus()
    val_data = vocab.tensor(train_val_split(text)[1])
    train_words, test_words = ins.split_words(
        ins.corpus_words(text), n_test=s["n_test_words"], seed=s["seed"]
    )
    train_set, test_set = ins.make_instructions(train_words), ins.make_instructions(test_words)
    masked = [ins.encode_example(vocab, p, r) for _, p, r in train_set]
    unmasked = [ins.encode_example(vocab, p, r, mask_prompt=False) for _, p, r in train_set]

    def run(r: int | None, steps: int, encoded=masked) -> dict:
        model = copy.deepcopy(pretrained)
        if r is not None:
            lo.inject_lora(model, r=r, alpha=s["lora_alpha"], targets=s["lora_targets"], seed=s["seed"])
        lr = s["full_lr"] if r is None else s["lora_lr"]
        history = ins.tune(
            model,
            encoded,
            steps,
            lr,
            s["batch_size"],
            grad_clip=s["grad_clip"],
            seed=s["seed"],
            progress=False,
        )
        scores = ins.exact_match(model, vocab, test_set)
        result = {
            "r": r,
            "steps": steps,
            "trainable": trainable_parameters(model)[0],
            "exact_match": scores["all"],
            "per_task": {k: v for k, v in scores.items() if k != "all"},
            "final_loss": sum(history.step_loss[-20:]) / len(history.step_loss[-20:]),
            "val_loss": estimate_loss(model, val_data, iters=4, batch_size=16, block_size=128),
        }  # no timings: the same machine writes the same file, byte for byte
        print(result, flush=True)
        return result

    probe = copy.deepcopy(pretrained)
    lo.inject_lora(probe, r=1, targets=s["lora_targets"])
    sweep = {
        "made_by": "python data/make_lora_sweep.py",
        "model": "data/gpt_char_python_docs.safetensors",
        "settings": {**s, "threads": cfg.threads, "torch": torch.__version__.split("+")[0]},
        "total_params": pretrained.num_parameters(),
        "lora_params_per_rank": trainable_parameters(probe)[0],
        "pretrained": {
            "exact_match": ins.exact_match(pretrained, vocab, test_set)["all"],
            "val_loss": estimate_loss(pretrained, val_data, iters=4, batch_size=16, block_size=128),
        },
        "full": run(None, s["full_steps"]),
        "full_unmasked": run(None, s["full_steps"], unmasked),
        "runs": [run(r, s["lora_steps"]) for r in args.ranks],
        "lora_short": run(s["chapter_rank"], s["full_steps"]),
    }
    args.out.write_text(json.dumps(sweep, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out.name}")


if __name__ == "__main__":
    main()
