"""Train the book's shipped character-level GPT on the book's corpus (Python's documentation).

    python scripts/train_gpt.py

That exact command made data/gpt_char_python_docs.safetensors (the weights, about 5 MB of float32) and
data/gpt_char_python_docs.json (config, vocabulary, validation loss, steps, seconds, the training curve),
and replaced their two lines in data/MANIFEST.sha256. Chapter 18 loads the result, chapter 19 generates
text with it: `helpers.checkpoints.load_shipped_gpt(device)`.

The model: 6 layers x 4 heads x 128 wide, context 256, no biases, tied embeddings (1.2M parameters).
Training: 1600 steps of 8 windows of 256 characters (3.3M characters, about 8 passes over the training
text), AdamW (weight decay 0.1 on the matrices), learning rate warming up over 100 steps to 4e-3, then a
cosine down to 4e-4, gradient clipping at 1, no dropout, seed 0. The validation loss is then measured over
the whole validation split (the last 10% of the corpus) in float32.

It saves a resumable checkpoint (weights, AdamW state, random generators) every --save-every steps
in build/train_gpt/; run the same command again after an interruption and it carries on from there,
ending with exactly the weights of an uninterrupted run (on the same machine and thread count).

Under torchrun it trains data-parallel (chapter 29): every process draws the same global batch of 8
windows, keeps its slice of 8 / N, and DistributedDataParallel averages the gradients, so N processes take
the steps one process would (equal up to the order of float sums); rank 0 alone prints and writes files.

    torchrun --nproc_per_node=2 scripts/train_gpt.py --threads 1                   # 2 CPU processes
    torchrun --nproc_per_node=4 scripts/train_gpt.py                               # 4 GPUs, NCCL

On another processor the sums inside the matrix products round differently, and over 1600 steps the run
drifts: the shipped files were made on a 2-core AMD EPYC (19 minutes, the machine heavily shared); the same
command on an idle 2-core Intel Xeon tracked the shipped curve within 0.01 and ended at a validation loss
of 1.414 against the shipped 1.400, its last 200 steps taking 29 s (about 4 minutes for a whole idle run).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from helpers.checkpoints import SHIPPED, load_checkpoint, save_checkpoint
from helpers.corpus import CharVocab, load_corpus, train_val_split
from helpers.data import DATA_DIR, MANIFEST_NAME
from helpers.distributed import BatchShard, init_from_torchrun
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import (
    TrainConfig,
    evaluate_all,
    make_adamw,
    train,
    use_fused_layernorm,
)
from helpers.watch import sample_text

ROOT = Path(__file__).resolve().parent.parent
CONFIG = dict(n_layer=6, n_head=4, n_embd=128, block_size=256, dropout=0.0, bias=False)
TRAIN = dict(
    max_steps=1600,
    batch_size=8,
    lr=4e-3,
    min_lr=4e-4,
    warmup_steps=100,
    weight_decay=0.1,
    beta1=0.9,
    beta2=0.99,
    grad_clip=1.0,
    eval_interval=200,
    eval_iters=8,
    seed=0,
)
CHECK_CHARS = 4097  # the first 4,097 validation characters: a quick check for the tests


def update_manifest(names: list[str]) -> None:
    """Replace (or add) the manifest lines of `names` with their current sha256."""
    manifest = DATA_DIR / MANIFEST_NAME
    lines = [ln for ln in manifest.read_text().splitlines() if ln.split("  ")[-1] not in names]
    for name in names:
        digest = hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
        lines.append(f"{digest}  {name}")
    manifest.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=TRAIN["max_steps"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--save-every", type=int, default=100, help="steps between resumable checkpoints")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "train_gpt", help="resumable checkpoints")
    p.add_argument("--out", type=Path, default=DATA_DIR, help="where the shipped files go")
    p.add_argument("--fresh", action="store_true", help="ignore a resumable checkpoint in --work")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rank, world = 0, 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun
        rank, world, device = init_from_torchrun(args.device)
        if TRAIN["batch_size"] % world:
            raise SystemExit(
                f"the batch of {TRAIN['batch_size']} windows cannot be split over {world} processes"
            )

    text = load_corpus()
    vocab = CharVocab.from_text(text)
    train_text, val_text = train_val_split(text, 0.9)
    train_data, val_data = vocab.tensor(train_text), vocab.tensor(val_text)
    config = GPTConfig(vocab_size=vocab.size, **CONFIG)
    warmup = min(TRAIN["warmup_steps"], args.steps // 2)  # for short trial runs
    tc = TrainConfig(**{**TRAIN, "max_steps": args.steps, "warmup_steps": warmup})

    torch.manual_seed(tc.seed)
    model = use_fused_layernorm(GPT(config)).to(device)
    optimizer = make_adamw(model, tc)
    resume = args.work / "resume.safetensors"
    state = None
    if resume.exists() and not args.fresh:
        ckpt = load_checkpoint(resume, model, optimizer)
        if ckpt.train_config != tc:
            raise SystemExit(f"{resume} was made with other settings; delete it or pass --fresh")
        state = ckpt.state
        if rank == 0:
            print(f"resuming from step {state.step} ({state.seconds:.0f} s so far)", flush=True)
    load_start = os.getloadavg()
    if rank == 0:
        print(
            f"{model.num_parameters():,} parameters; {len(train_data):,} training and {len(val_data):,} "
            f"validation characters; {tc.max_steps} steps of {tc.batch_size} x {config.block_size}; "
            f"{args.threads} threads on {device}; load average {load_start[0]:.1f}",
            flush=True,
        )
    if world > 1 and rank == 0:
        print(
            f"data parallel over {world} processes: {tc.batch_size // world} windows each per step",
            flush=True,
        )
    trained = model if world == 1 else BatchShard(model, [device.index] if device.type == "cuda" else None)

    def on_eval(st, m) -> None:
        if rank != 0:
            return
        h = st.history
        print(
            f"step {st.step:5d}  train {h.train_loss[-1]:.4f}  val {h.val_loss[-1]:.4f}  "
            f"{st.seconds:7.0f} s  load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if st.step and st.step % args.save_every == 0 and st.step < tc.max_steps:
            save_checkpoint(resume, model, optimizer, st, tc)

    state = train(trained, optimizer, train_data, val_data, tc, state=state, on_eval=on_eval, progress=False)
    seconds = state.seconds
    if rank != 0:  # the other processes hold the same weights: nothing left for them to do
        torch.distributed.destroy_process_group()
        return 0
    val_loss = evaluate_all(model, val_data)  # float32, every validation character once
    check_loss = evaluate_all(model, val_data[:CHECK_CHARS])
    print(f"done: {state.step} steps in {seconds:.0f} s; validation loss (whole split) {val_loss:.4f}")

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / f"{SHIPPED}.safetensors"
    save_checkpoint(weights, model.cpu(), extra={"vocab": list(vocab.chars)})
    info = {
        "about": "a character-level GPT trained on data/python_docs.txt by scripts/train_gpt.py",
        "command": "python scripts/train_gpt.py"
        + ("" if args.steps == TRAIN["max_steps"] else f" --steps {args.steps}"),
        "config": asdict(config),
        "vocab": list(vocab.chars),
        "train_config": asdict(tc),
        "parameters": model.num_parameters(),
        "steps": state.step,
        "tokens": state.step * tc.batch_size * config.block_size,
        "seconds": round(seconds, 1),
        "device": str(device),
        "threads": args.threads,
        "load_average": [round(x, 1) for x in (*load_start, *os.getloadavg())],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
        "val_loss": val_loss,
        "val_loss_check": check_loss,
        "val_loss_check_chars": CHECK_CHARS,
        "history": {
            "eval_step": state.history.eval_step,
            "train_loss": state.history.train_loss,
            "val_loss": state.history.val_loss,
            "seconds": state.history.seconds,
        },
        "sample": sample_text(model, vocab, "def ", 300, temperature=0.8, seed=0),
    }
    (args.out / f"{SHIPPED}.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    if args.out.resolve() == DATA_DIR.resolve():
        update_manifest([f"{SHIPPED}.safetensors", f"{SHIPPED}.json"])
    print(f"wrote {weights.name} ({weights.stat().st_size / 1e6:.1f} MB) and {SHIPPED}.json")
    resume.unlink(missing_ok=True)
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
