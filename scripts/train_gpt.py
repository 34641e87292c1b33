"""Train a GPT that the book ships, on the book's corpus (Python's documentation).

    python scripts/train_gpt.py                  # the book's model (--recipe bpe, the default)
    python scripts/train_gpt.py --recipe char    # the first, character-level model

`--recipe bpe` made data/gpt_bpe_python_docs.safetensors (12.2M parameters stored in bfloat16, 24 MB),
data/gpt_bpe_python_docs_tokenizer.json (its 4,096-token BPE vocabulary, chapter 15's RegexTokenizer with
GPT-4's split pattern, trained here on the training text - deterministically, so every run gets the same
merges) and data/gpt_bpe_python_docs.json (config, training settings, the curve, validation loss, bits per
byte, seconds, the command), and replaced their lines in data/MANIFEST.sha256. Chapters 18-20 and 26-27
load it with `helpers.checkpoints.load_shipped_gpt(device)`.

The model: chapter 17's modern block - RoPE, RMSNorm, SwiGLU, no biases, tied embeddings - 6 layers x 6
heads x 384 wide, context 256 tokens. Training text: data/python_docs_311_train.txt (9.1 MB, made by
data/make_docs_corpus.py); validation: data/python_docs_311_val.txt (29 held-out documents). 1500 steps of
16 windows of 256 tokens (6.1M tokens, about 2.4 passes), AdamW (betas 0.9, 0.95; weight decay 0.1 on the
Linear matrices), learning rate warming up over 100 steps to 2e-3, then a cosine down to 2e-4, gradient
clipping at 1, no dropout, seed 0, bf16 autocast (`--amp none` turns it off: on a CPU without AVX-512 BF16
or AMX it is slower than float32; on this book's test machine it made a step about twice as fast). At the
end the weights are rounded to bfloat16 and everything is measured on exactly those weights, in float32:
the loss over every validation token, and bits per byte on the validation text and on the first model's
held-out text (the last 10% of data/python_docs.txt, which neither model trained on).

Measured: 58.7 minutes on the 2-core AMD EPYC that made the shipped files (2 threads, the machine shared
with other work, load 7-10); validation loss 3.503 nats per token; 1.322 bits per byte on the first
model's held-out text, against 2.016 for the first model.

`--recipe char` is the first shipped model (data/gpt_char_python_docs.*): 6 x 4 x 128, GPT-2's block,
context 256 characters, 1.2M parameters, 1600 steps of 8 windows, float32, trained on data/python_docs.txt.

It saves a resumable checkpoint (weights, AdamW state, random generators) every --save-every steps in
build/train_gpt/; run the same command again after an interruption and it carries on from there, ending
with exactly the weights of an uninterrupted run (on the same machine and thread count; tested with the
char recipe). Batches, initial weights and the tokenizer are seeded, so a rerun on the same machine and
thread count retraces the same curve; on another processor the sums inside the matrix products round
differently and the curve drifts a little (for the char recipe an idle Intel Xeon tracked the AMD curve
within 0.01 and ended at 1.414 against 1.400).

Under torchrun it trains data-parallel (chapter 29): every process draws the same global batch, keeps its
slice of batch / N windows, and DistributedDataParallel averages the gradients, so N processes take the
steps one process would (equal up to the order of float sums); rank 0 alone prints and writes files.

    torchrun --nproc_per_node=2 scripts/train_gpt.py --threads 1                   # 2 CPU processes
    torchrun --nproc_per_node=4 scripts/train_gpt.py                               # 4 GPUs, NCCL

`--max-chars N` trains on the first N characters of each text only (for smoke tests).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from helpers.checkpoints import load_checkpoint, save_checkpoint
from helpers.corpus import CharVocab, train_val_split
from helpers.data import DATA_DIR, MANIFEST_NAME, data_path
from helpers.distributed import BatchShard, init_from_torchrun
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import (
    TrainConfig,
    bits_per_byte,
    evaluate_all,
    make_adamw,
    train,
    use_fused_layernorm,
)
from helpers.tokenizers import GPT4_SPLIT_PATTERN, RegexTokenizer
from helpers.watch import sample_text

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Recipe:
    """One shipped model: its files' stem in data/, its text, its tokenizer, its sizes and its training."""

    name: str  # data/<name>.safetensors, data/<name>.json (and data/<name>_tokenizer.json for BPE)
    train_text: str  # a file in data/
    val_text: str | None  # a file in data/, or None: the last 10 % of train_text
    vocab_size: int | None  # BPE vocabulary size; None: characters
    config: dict
    train: dict
    dtype: str  # what the shipped weights are stored in
    prompt: str  # for the sample saved with the model


RECIPES = {
    # the shipped model since issue 11: BPE tokens, chapter 17's modern block, bf16 on the CPU
    "bpe": Recipe(
        name="gpt_bpe_python_docs",
        train_text="python_docs_311_train.txt",
        val_text="python_docs_311_val.txt",
        vocab_size=4096,
        config=dict(
            n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.0, bias=False,
            norm="rmsnorm", mlp="swiglu", position="rope",
        ),
        train=dict(
            max_steps=1500, batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=100, weight_decay=0.1,
            beta1=0.9, beta2=0.95, grad_clip=1.0, eval_interval=100, eval_iters=4, eval_train=False,
            amp="bf16", seed=0,
        ),
        dtype="bfloat16",
        prompt="The ",
    ),
    # the first shipped model (chapters 18-20 before issue 11): characters, GPT-2's block, float32
    "char": Recipe(
        name="gpt_char_python_docs",
        train_text="python_docs.txt",
        val_text=None,
        vocab_size=None,
        config=dict(n_layer=6, n_head=4, n_embd=128, block_size=256, dropout=0.0, bias=False),
        train=dict(
            max_steps=1600, batch_size=8, lr=4e-3, min_lr=4e-4, warmup_steps=100, weight_decay=0.1,
            beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=200, eval_iters=8, seed=0,
        ),
        dtype="float32",
        prompt="def ",
    ),
}  # fmt: skip
CHECK_TOKENS = 4097  # the first 4,097 validation tokens: a quick check for the tests


def update_manifest(names: list[str]) -> None:
    """Replace (or add) the manifest lines of `names` with their current sha256."""
    manifest = DATA_DIR / MANIFEST_NAME
    lines = [ln for ln in manifest.read_text().splitlines() if ln.split("  ")[-1] not in names]
    for name in names:
        digest = hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
        lines.append(f"{digest}  {name}")
    manifest.write_text("\n".join(lines) + "\n")


def load_data(recipe: Recipe, out: Path, max_chars: int | None = None) -> tuple:
    """(tokenizer or CharVocab, train ids, val ids, the old held-out text): the recipe's text, tokenized.

    For BPE the tokenizer is trained on the training text first (deterministic: the same merges every
    time) and written to <out>/<name>_tokenizer.json.
    """
    text = data_path(recipe.train_text).read_text(encoding="utf-8")[:max_chars]
    if recipe.val_text is None:
        train_text, val_text = train_val_split(text, 0.9)
    else:
        train_text, val_text = text, data_path(recipe.val_text).read_text(encoding="utf-8")[:max_chars]
    if recipe.vocab_size is None:
        vocab = CharVocab.from_text(text)
    else:
        vocab = RegexTokenizer(GPT4_SPLIT_PATTERN).train(train_text, recipe.vocab_size)
        out.mkdir(parents=True, exist_ok=True)
        vocab.save(out / f"{recipe.name}_tokenizer.json")
    as_ids = lambda t: torch.tensor(vocab.encode(t), dtype=torch.long)  # noqa: E731
    return vocab, as_ids(train_text), as_ids(val_text), val_text


def held_out_bits_per_byte(model: GPT, vocab, text: str) -> float:
    """Bits per byte of UTF-8 on `text`: comparable between tokenizers (chapter 18)."""
    ids = torch.tensor(vocab.encode(text), dtype=torch.long)
    return bits_per_byte(evaluate_all(model, ids), len(ids) - 1, len(text.encode("utf-8")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--recipe", choices=sorted(RECIPES), default="bpe", help="which shipped model (default bpe)"
    )
    p.add_argument("--steps", type=int, help="training steps (default: the recipe's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", choices=["auto", "bf16", "none"], help="autocast (default: the recipe's)")
    p.add_argument("--save-every", type=int, default=100, help="steps between resumable checkpoints")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "train_gpt", help="resumable checkpoints")
    p.add_argument("--out", type=Path, default=DATA_DIR, help="where the shipped files go")
    p.add_argument("--fresh", action="store_true", help="ignore a resumable checkpoint in --work")
    p.add_argument("--max-chars", type=int, help="use only the first N characters of each text (smoke tests)")
    args = p.parse_args(argv)
    recipe = RECIPES[args.recipe]
    steps = args.steps or recipe.train["max_steps"]
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rank, world = 0, 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun
        rank, world, device = init_from_torchrun(args.device)
        if recipe.train["batch_size"] % world:
            raise SystemExit(
                f"the batch of {recipe.train['batch_size']} windows cannot be split over {world} processes"
            )

    vocab, train_data, val_data, val_text = load_data(recipe, args.out, args.max_chars)
    vocab_size = vocab.size if isinstance(vocab, CharVocab) else vocab.vocab_size
    config = GPTConfig(vocab_size=vocab_size, **recipe.config)
    warmup = min(recipe.train["warmup_steps"], steps // 2)  # for short trial runs
    overrides = {"max_steps": steps, "warmup_steps": warmup} | ({"amp": args.amp} if args.amp else {})
    tc = TrainConfig(**{**recipe.train, **overrides})

    torch.manual_seed(tc.seed)
    model = use_fused_layernorm(GPT(config)).to(device)
    optimizer = make_adamw(model, tc)
    resume = args.work / f"resume_{recipe.name}.safetensors"
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
            f"{recipe.name}: {model.num_parameters():,} parameters; {len(train_data):,} training and "
            f"{len(val_data):,} validation tokens; {tc.max_steps} steps of {tc.batch_size} x "
            f"{config.block_size}; {args.threads} threads on {device}; load average {load_start[0]:.1f}",
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
    # the shipped weights are stored in recipe.dtype: measure exactly those, computing in float32
    model = model.cpu().to(getattr(torch, recipe.dtype)).float()
    val_loss = evaluate_all(model, val_data)  # every validation token once
    check_loss = evaluate_all(model, val_data[:CHECK_TOKENS])
    old_text = data_path("python_docs.txt").read_text(encoding="utf-8")
    old_held_out = train_val_split(old_text, 0.9)[1]  # the first model's validation text, unseen by both
    bpb = {
        "val": held_out_bits_per_byte(model, vocab, val_text),
        "python_docs_val": held_out_bits_per_byte(model, vocab, old_held_out),
    }
    print(
        f"done: {state.step} steps in {seconds:.0f} s; validation loss (whole split) {val_loss:.4f}; "
        f"bits per byte {bpb['val']:.3f} (own validation text), {bpb['python_docs_val']:.3f} "
        "(python_docs.txt's validation text)"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / f"{recipe.name}.safetensors"
    chars = {"vocab": list(vocab.chars)} if isinstance(vocab, CharVocab) else {}
    save_checkpoint(weights, model.to(getattr(torch, recipe.dtype)), extra=chars or None)
    model.float()
    info = {
        "about": f"a GPT trained on data/{recipe.train_text} by scripts/train_gpt.py --recipe {args.recipe}",
        "command": f"python scripts/train_gpt.py --recipe {args.recipe}"
        + ("" if steps == recipe.train["max_steps"] else f" --steps {steps}")
        + (f" --max-chars {args.max_chars}" if args.max_chars else ""),
        "recipe": args.recipe,
        "config": asdict(config),
        **chars,
        "tokenizer": None if chars else f"{recipe.name}_tokenizer.json",
        "train_text": recipe.train_text,
        "val_text": recipe.val_text,
        "dtype": recipe.dtype,
        "train_config": asdict(tc),
        "parameters": model.num_parameters(),
        "steps": state.step,
        "tokens": state.step * tc.batch_size * config.block_size,
        "seconds": round(seconds, 1),
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "load_average": [round(x, 1) for x in (*load_start, *os.getloadavg())],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
        "val_loss": val_loss,
        "val_loss_check": check_loss,
        "val_loss_check_tokens": CHECK_TOKENS,
        "bits_per_byte": bpb,
        "history": {
            "eval_step": state.history.eval_step,
            "train_loss": state.history.train_loss,
            "val_loss": state.history.val_loss,
            "seconds": state.history.seconds,
        },
        "sample": sample_text(model, vocab, recipe.prompt, 300, temperature=0.8, seed=0),
    }
    (args.out / f"{recipe.name}.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    if args.out.resolve() == DATA_DIR.resolve():
        files = [f"{recipe.name}.safetensors", f"{recipe.name}.json"] + ([] if chars else [info["tokenizer"]])
        update_manifest(files)
    print(f"wrote {weights.name} ({weights.stat().st_size / 1e6:.1f} MB) and {recipe.name}.json")
    resume.unlink(missing_ok=True)
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
