"""Chapter 26's scaling-law sweep: tiny GPTs over model size N and training tokens D.

    OMP_WAIT_POLICY=PASSIVE python scripts/scaling_sweep.py --threads 1     # writes data/scaling_sweep.json
    python scripts/scaling_sweep.py --quick --out X.json                    # a smoke run (seconds)

Every run is the book's GPT (helpers.gpt, no biases, tied head) trained by helpers.pretrain.train on the
book's corpus at character level (helpers.corpus: Python's documentation, split 90/10 in order), with
the same batch (16 windows of 64 characters), learning rate (3e-3 peak, 10 % warm-up, cosine to 3e-4)
and seed. A run with a larger token budget D is a separate run with its own, longer schedule (not an
early checkpoint of a longer run), as in Hoffmann et al. (2022): a cosine cut short is not yet annealed.

N is the number of NON-EMBEDDING parameters (GPT.num_parameters(exclude_embeddings=True): no token or
position table; the head is tied to the token table, so it is not counted either), as in Kaplan et al.
(2020); the total is recorded too. D = steps x batch x context. The loss is the mean next-character
cross-entropy (nats) on a fixed subset of the validation text. `seconds` is the wall time of the
training loop and `cpu_seconds` the CPU time this process used in it (on a shared machine the wall
time includes waiting for other work).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from helpers.corpus import CharVocab, load_corpus, train_val_split
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import TrainConfig, estimate_loss, make_adamw, train

SIZES = [(1, 32), (2, 48), (3, 64), (3, 96), (4, 128)]  # (n_layer, n_embd); 4 heads each
STEPS = [200, 400, 800, 1600]  # token budgets D = steps x 16 x 64
QUICK_SIZES, QUICK_STEPS = [(1, 16), (1, 32)], [4, 8]
BATCH, CONTEXT, N_HEAD = 16, 64, 4
LR, MIN_LR = 3e-3, 3e-4
VAL = {"iters": 40, "batch_size": 32, "block_size": CONTEXT, "seed": 2024}  # the fixed validation subset


def sweep_config(vocab_size: int, n_layer: int, n_embd: int) -> GPTConfig:
    """The GPT of one row of the sweep (the notebook builds its fresh run with this too)."""
    return GPTConfig(
        vocab_size=vocab_size, block_size=CONTEXT, n_layer=n_layer, n_head=N_HEAD, n_embd=n_embd, bias=False
    )


def sweep_train_config(steps: int, seed: int = 0) -> TrainConfig:
    """The training settings of a run of `steps` steps (evaluation inside train() kept minimal)."""
    return TrainConfig(
        max_steps=steps,
        batch_size=BATCH,
        lr=LR,
        min_lr=MIN_LR,
        warmup_steps=max(1, steps // 10),
        eval_interval=steps,
        eval_iters=1,
        eval_train=False,
        seed=seed,
    )


def run(sizes, steps_list, out: Path, threads: int, val_iters: int = VAL["iters"]) -> dict:
    torch.set_num_threads(threads)
    text = load_corpus()
    vocab = CharVocab.from_text(text)
    train_text, val_text = train_val_split(text)
    train_data = torch.tensor(vocab.encode(train_text))
    val_data = torch.tensor(vocab.encode(val_text))
    val = {**VAL, "iters": val_iters}
    runs = []
    began_all, load_before = time.perf_counter(), os.getloadavg()
    for n_layer, n_embd in sizes:
        config = sweep_config(vocab.size, n_layer, n_embd)
        for steps in steps_list:
            torch.manual_seed(0)
            model = GPT(config)
            tc = sweep_train_config(steps)
            began, began_cpu = time.perf_counter(), time.process_time()
            train(model, make_adamw(model, tc), train_data, val_data, tc, progress=False)
            seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - began_cpu
            loss = estimate_loss(model, val_data, **val)
            row = {
                "n_layer": n_layer,
                "n_embd": n_embd,
                "N": model.num_parameters(exclude_embeddings=True),
                "params_total": model.num_parameters(),
                "steps": steps,
                "D": steps * BATCH * CONTEXT,
                "val_loss": round(loss, 4),
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2),
            }
            runs.append(row)
            print(
                f"L={n_layer} C={n_embd:4d} N={row['N']:8,d} D={row['D']:9,d} "
                f"val {loss:.4f}  {seconds:6.1f} s ({cpu_seconds:6.1f} s of CPU)",
                flush=True,
            )
    report = {
        "made_by": "python scripts/scaling_sweep.py" + (" --quick" if sizes == QUICK_SIZES else ""),
        "N": "non-embedding parameters: GPT.num_parameters(exclude_embeddings=True)",
        "D": f"training tokens = steps x {BATCH} x {CONTEXT}",
        "val_loss": f"mean next-character cross-entropy (nats) on {val['iters']} batches x "
        f"{val['batch_size']} windows of {CONTEXT} characters of the validation split, "
        f"generator seed {val['seed']}",
        "settings": {
            "corpus": "helpers.corpus.load_corpus(), characters, 90/10 split",
            "vocab_size": vocab.size,
            "train_tokens_available": len(train_data),
            "n_head": N_HEAD,
            "train": {
                k: v
                for k, v in asdict(sweep_train_config(1600)).items()
                if k not in ("max_steps", "warmup_steps")
            },
            "warmup": "steps // 10",
        },
        "machine": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": platform.machine(),
            "threads": threads,
            "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        },
        "total_seconds": round(time.perf_counter() - began_all, 1),
        "runs": runs,
    }
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 tiny sizes x 2 tiny budgets: a smoke run")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "scaling_sweep.json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        run(QUICK_SIZES, QUICK_STEPS, args.out, args.threads, val_iters=2)
    else:
        run(SIZES, STEPS, args.out, args.threads)


if __name__ == "__main__":
    main()
