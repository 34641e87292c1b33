"""Write data/lora_rank_sweep.json: chapter 20's instruction tuning, with LoRA at several ranks.

    OMP_WAIT_POLICY=PASSIVE python data/make_lora_sweep.py --threads 1

Each run does what notebooks/20_finetuning.ipynb does: copy the shipped GPT (helpers.checkpoints: 12M
parameters, BPE tokens), tune it on the book's instruction set (helpers.instructions: "prose, code or
session?" about windows of data/python_docs_311_val.txt, with helpers.lora's adapters) with the chapter's
steps, batch, learning rate, clipping, bf16 autocast and seeds, then measure exact match on windows from
held-out paragraphs and the loss on the validation text (how much of the documentation the model still
predicts). The runs:

    full           full fine-tuning, the loss on the response only (the chapter's 20.3)
    full_unmasked  the same, with the loss on every token, prompt included (why the chapter masks)
    runs           LoRA on the attention layers at ranks 1, 2, 4, 8, 16 (the chapter runs rank 4 itself;
                   the rank slider of 20.6 shows them all)
    lora_short     LoRA at the chapter's rank, for only as many steps as full fine-tuning gets

The chapter checks that its own full and rank-4 runs agree with this file. Then update data/MANIFEST.sha256
(`sha256sum data/lora_rank_sweep.json`). About 5 CPU-minutes with --threads 1; on one machine with the same
thread count the file is the same byte for byte every time (it holds no timings). `--steps 10 --ranks 1
--out /tmp/x.json` is a quick trial run (the tests make one).
"""

import argparse
import copy
import json
from pathlib import Path

import torch

from helpers import instructions as ins
from helpers import lora as lo
from helpers.checkpoints import load_shipped_gpt
from helpers.data import data_path
from helpers.finetune import snippet_dataset
from helpers.pretrain import estimate_loss
from helpers.runtime import setup
from helpers.train import trainable_parameters

# the chapter's settings (notebooks/20_finetuning.ipynb asserts that it uses the same)
SETTINGS = {
    "snippet_length": 32,
    "per_class": [200, 50],
    "batch_size": 16,
    "grad_clip": 1.0,
    "amp": "bf16",
    "full_steps": 40,
    "full_lr": 1e-3,
    "lora_steps": 80,
    "lora_lr": 3e-3,
    "lora_alpha": 8.0,
    "lora_targets": ["attn.c_attn", "attn.c_proj"],
    "chapter_rank": 4,
    "seed": 0,
}
RANKS = (1, 2, 4, 8, 16)
VAL_LOSS = {"iters": 2, "batch_size": 8, "block_size": 128}  # the documentation's loss, on a small slice


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("lora_rank_sweep.json"))
    parser.add_argument("--steps", type=int, help="a trial run: this many steps for every run (not shipped)")
    parser.add_argument("--ranks", type=int, nargs="+", default=list(RANKS), help="LoRA ranks to sweep")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: helpers.runtime's)")
    args = parser.parse_args(argv)
    cfg = setup(seed=0, device="cpu", threads=args.threads, quiet=True)
    s = dict(SETTINGS)
    if args.steps is not None:
        s.update(full_steps=args.steps, lora_steps=args.steps)
    pretrained, tokenizer, info = load_shipped_gpt(cfg.device)
    val_text = data_path(info["val_text"]).read_text(encoding="utf-8")
    val_data = torch.tensor(tokenizer.encode(val_text[:100_000]))  # (N,) a slice is enough for a loss
    train_x, train_y, test_x, test_y = snippet_dataset(
        val_text, length=s["snippet_length"], per_class=tuple(s["per_class"]), seed=s["seed"]
    )
    train_set, test_set = ins.make_instructions(train_x, train_y), ins.make_instructions(test_x, test_y)
    masked = [ins.encode_example(tokenizer, p, r) for _, p, r in train_set]
    unmasked = [ins.encode_example(tokenizer, p, r, mask_prompt=False) for _, p, r in train_set]

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
            amp_dtype=torch.bfloat16,
        )
        scores = ins.exact_match(model, tokenizer, test_set)
        result = {
            "r": r,
            "steps": steps,
            "trainable": trainable_parameters(model)[0],
            "exact_match": scores["all"],
            "per_class": {k: v for k, v in scores.items() if k != "all"},
            "final_loss": sum(history.step_loss[-10:]) / len(history.step_loss[-10:]),
            "val_loss": estimate_loss(model, val_data, **VAL_LOSS),
        }  # no timings: the same machine writes the same file, byte for byte
        print(result, flush=True)
        return result

    probe = copy.deepcopy(pretrained)
    lo.inject_lora(probe, r=1, targets=s["lora_targets"])
    sweep = {
        "made_by": "python data/make_lora_sweep.py",
        "model": "data/gpt_bpe_python_docs.safetensors",
        "model_about": info.get("about", ""),
        "model_val_loss": info["val_loss"],
        "settings": {**s, "threads": cfg.threads, "torch": torch.__version__.split("+")[0]},
        "total_params": pretrained.num_parameters(),
        "lora_params_per_rank": trainable_parameters(probe)[0],
        "pretrained": {
            "exact_match": ins.exact_match(pretrained, tokenizer, test_set)["all"],
            "val_loss": estimate_loss(pretrained, val_data, **VAL_LOSS),
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
