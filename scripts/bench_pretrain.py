"""Benchmark chapter 18's pretraining recipe against a reference recipe, side by side, on this machine.

    python scripts/bench_pretrain.py --text PATH                 # the reference, then the book's recipe
    python scripts/bench_pretrain.py --text PATH --ablate        # and every step between them (18.7's table)
    python scripts/bench_pretrain.py --text PATH --max-chars 1115394   # the first N characters of a text
    python scripts/bench_pretrain.py --only reference            # one recipe (tinyshakespeare by default)

The question: how soon does the book's recipe reach the validation loss that the reference recipe ends
with? Both run in this one invocation, on the same text, split and machine, so the ratio of their times is
this machine's, whatever the machine. No figure measured elsewhere is printed.

The reference recipe is a well-known from-scratch GPT's CPU preset for character-level tinyshakespeare,
ported faithfully to the book's model: 4 layers x 4 heads x 128 wide, context 64, batch 12, 2000 steps;
AdamW (betas 0.9, 0.99) with weight decay 0.1 on every parameter with two or more dimensions (the
embedding tables included), none on biases and norm scales; learning rate 1e-3, 100 warm-up steps, a
cosine down to 1e-4 at step 2000; gradient clipping at 1; GPT-2's initialisation (N(0, 0.02), the
residual projections scaled by 1/sqrt(2 x layers)); LayerNorm without biases, GELU, learned positions,
tied head, no dropout, float32; an evaluation of 20 batches on both the training and the validation split
every 250 steps. Differences that remain, and why they do not matter: the book's GELU is the tanh
approximation (the reference's is exact; they differ by under 0.001 everywhere); its warm-up reaches the
peak one step earlier (lr x (step + 1) / 100, not / 101); and the reference's evaluations draw new random
batches each time while this benchmark scores every run on one fixed subset of the validation split
(the same number of windows, so the same cost, without the noise - the curve moves only because the
model does). The fixed subset reads a little above the whole split; both are printed.

The book's recipe, and what each change buys (`--ablate` measures each one on top of the ones before; the
chapter's section 18.7 shows the table): see LADDER below.

Data: a UTF-8 text (default: helpers.data.fetch("tinyshakespeare"), after helpers.data.download), split
90/10 in order, the vocabulary every character of the text. The clock runs from the first step and
includes the evaluations. "Time to target" is the wall time of the first evaluation at or below the
reference's final validation loss. The script also prints the process's CPU time: on a shared machine the
wall time is inflated, and a run with --threads 1 has a CPU time close to an idle machine's wall time.

With more runnable threads than cores, OpenMP's spinning threads can make 2-thread training ten times
slower. `./book bench` shortens the spinning (GOMP_SPINCOUNT=10000, see the `book` script); on a shared
machine OMP_WAIT_POLICY=PASSIVE is better still.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from helpers.corpus import CharVocab, train_val_split
from helpers.data import fetch
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import TrainConfig, evaluate_all, make_adamw, train, use_fused_layernorm
from helpers.runtime import pick_device

REFERENCE = dict(
    n_layer=4,
    n_head=4,
    n_embd=128,
    block_size=64,
    batch_size=12,
    steps=2000,
    lr=1e-3,
    min_lr=1e-4,
    warmup=100,
    beta2=0.99,
    weight_decay=0.1,
    decay_embeddings=True,
    eval_interval=250,
    eval_train=True,
    norm="layernorm",
    mlp="gelu",
    position="learned",
    amp="none",
)

# The book's recipe, one change at a time: each rung keeps the ones above it. Chapter 18.7 explains them.
LADDER = [
    ("evaluate the validation split only, every 100 steps", dict(eval_train=False, eval_interval=100)),
    ("no weight decay on the embeddings", dict(decay_embeddings=False)),
    ("5x the learning rate (5e-3, warm-up 50)", dict(lr=5e-3, min_lr=5e-4, warmup=50)),
    ("modern block: RoPE, RMSNorm, SwiGLU", dict(norm="rmsnorm", mlp="swiglu", position="rope")),
    ("narrower: 96 wide", dict(n_embd=96)),
    ("a shorter schedule: 1200 steps", dict(steps=1200)),
]
BOOK = REFERENCE | {k: v for _, change in LADDER for k, v in change.items()}
PRESETS = {"reference": REFERENCE, "book": BOOK}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", type=Path, help="a UTF-8 text file (default: tinyshakespeare)")
    p.add_argument("--max-chars", type=int, help="use only the first N characters of the text")
    p.add_argument("--only", choices=sorted(PRESETS), help="run one recipe (no comparison)")
    p.add_argument("--ablate", action="store_true", help="also run every rung of the ladder")
    p.add_argument("--target", type=float, help="the loss to reach (default: the reference's final loss)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-iters", type=int, default=20, help="batches in the fixed validation subset")
    p.add_argument("--eval-batch", type=int, default=12, help="windows per evaluation batch")
    p.add_argument("--steps", type=int, help="override every recipe's steps (smoke tests)")
    p.add_argument("--quiet", action="store_true", help="no per-evaluation lines")
    p.add_argument("--json", type=Path, help="also write the results (every curve, the table) to this file")
    args = p.parse_args(argv)
    if args.only == "book" and args.target is None and not args.ablate:
        p.error("--only book needs --target (the reference's final loss comes from a reference run)")
    return args


def load_text(path: Path | None, max_chars: int | None) -> tuple[str, str]:
    path = Path(path) if path is not None else fetch("tinyshakespeare")
    text = path.read_text(encoding="utf-8")
    if max_chars is not None:
        if max_chars < 1000:
            raise SystemExit(f"--max-chars must be at least 1000, got {max_chars}")
        text = text[:max_chars]
    return path.name, text


def run(
    name: str,
    recipe: dict,
    data: tuple[torch.Tensor, torch.Tensor, int],
    args: argparse.Namespace,
    target: float | None,
) -> dict:
    """Train one recipe; stop at the first evaluation <= target (None: run every step). Returns the curve."""
    train_data, val_data, vocab_size = data
    steps = args.steps or recipe["steps"]
    torch.manual_seed(args.seed)
    config = GPTConfig(
        vocab_size=vocab_size,
        block_size=recipe["block_size"],
        n_layer=recipe["n_layer"],
        n_head=recipe["n_head"],
        n_embd=recipe["n_embd"],
        bias=False,
        norm=recipe["norm"],
        mlp=recipe["mlp"],
        position=recipe["position"],
    )
    device = pick_device(args.device)
    model = use_fused_layernorm(GPT(config)).to(device)  # the reference's code uses the fused kernel too
    tc = TrainConfig(
        max_steps=steps,
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        min_lr=recipe["min_lr"],
        warmup_steps=min(recipe["warmup"], steps - 1),
        beta2=recipe["beta2"],
        weight_decay=recipe["weight_decay"],
        decay_embeddings=recipe["decay_embeddings"],
        eval_interval=recipe["eval_interval"],
        eval_iters=args.eval_iters,
        eval_batch_size=args.eval_batch,
        eval_train=recipe["eval_train"],
        amp=recipe["amp"],
        seed=args.seed,
    )
    rows = []
    cpu_start = time.process_time()

    def on_eval(state, _model) -> bool:
        h = state.history
        rows.append((state.step, h.seconds[-1], time.process_time() - cpu_start, h.val_loss[-1]))
        if not args.quiet:
            print(
                f"  {name:>10} step {state.step:>5} {h.seconds[-1]:>7.1f} s wall {rows[-1][2]:>7.1f} s CPU  "
                f"val {h.val_loss[-1]:.4f}  load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        return target is not None and h.val_loss[-1] <= target

    state = train(model, make_adamw(model, tc), train_data, val_data, tc, on_eval=on_eval, progress=False)
    hit = next((r for r in rows if target is not None and r[3] <= target), None)
    tokens = state.step * tc.batch_size * config.block_size
    return {
        "name": name,
        "rows": rows,
        "hit": hit,
        "final": rows[-1],
        "tokens_per_s": tokens / max(state.seconds - sum(state.history.eval_seconds), 1e-9),
        "eval_seconds": sum(state.history.eval_seconds),
        "parameters": model.num_parameters(),
        "whole_val": evaluate_all(model, val_data, block_size=config.block_size),  # after the clock stops
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    name, text = load_text(args.text, args.max_chars)
    vocab = CharVocab.from_text(text)
    train_text, val_text = train_val_split(text, 0.9)
    data = (vocab.tensor(train_text), vocab.tensor(val_text), vocab.size)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{name}: {len(text):,} characters, vocabulary {vocab.size}; fixed validation subset of "
        f"{args.eval_iters} x {args.eval_batch} windows; torch {torch.__version__}, {args.threads} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {load}"
    )

    target = args.target
    results = []
    if args.only != "book":
        reference = run("reference", REFERENCE, data, args, target=None)
        results.append(("reference recipe", reference))
        if target is None:
            target = reference["final"][3]
        print(
            f"the reference ends at validation loss {reference['final'][3]:.4f}: the target is {target:.4f}"
        )
    if args.ablate:
        recipe = dict(REFERENCE)
        for label, change in LADDER:
            recipe = recipe | change
            results.append((f"+ {label}", run(label.split(":")[0][:10], recipe, data, args, target)))
    elif args.only != "reference":
        results.append(("book recipe", run("book", BOOK, data, args, target)))

    base = results[0][1] if args.only != "book" else None
    base_wall, base_cpu = (base["final"][1], base["final"][2]) if base else (None, None)
    print()
    print(f"time to validation loss <= {target:.4f} on {name} (this machine, this run)")
    columns = (
        ("params", 7),
        ("steps", 6),
        ("wall s", 7),
        ("CPU s", 7),
        ("x ref", 6),
        ("CPU x", 6),
        ("tok/s", 7),
    )
    columns += ("final", 6), ("whole", 6)
    print(f"{'recipe':58s} " + " ".join(f"{c:>{w}}" for c, w in columns))
    for label, r in results:
        point = r["hit"] or (r["final"] if r is base else None)
        if point is None:
            cells = f"{'-':>6} {'not reached':>15} {'-':>6} {'-':>6}"
        else:
            ratio = f"{point[1] / base_wall:.2f}" if base_wall else "-"
            cpu_ratio = f"{point[2] / base_cpu:.2f}" if base_cpu else "-"
            cells = f"{point[0]:>6} {point[1]:>7.1f} {point[2]:>7.1f} {ratio:>6} {cpu_ratio:>6}"
        print(
            f"{label[:58]:58s} {r['parameters'] / 1e6:>6.2f}M {cells} {r['tokens_per_s']:>7,.0f} "
            f"{r['final'][3]:>6.3f} {r['whole_val']:>6.3f}"
        )
    print("('final': the last evaluation on the fixed subset; 'whole': the whole validation split, after)")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.json:
        record = {
            "text": name,
            "characters": len(text),
            "target": target,
            "threads": args.threads,
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "date": datetime.date.today().isoformat(),
            "load_average_after": os.getloadavg()[0],
            "reference": REFERENCE,
            "ladder": [[label, change] for label, change in LADDER],
            "runs": [{"label": label, **{k: v for k, v in r.items() if k != "name"}} for label, r in results],
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    last = results[-1][1]
    return 0 if (last["hit"] is not None or last is base) else 1


if __name__ == "__main__":
    sys.exit(main())
