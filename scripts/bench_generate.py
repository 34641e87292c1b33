"""Tokens per second with and without the KV cache, on the shipped GPT and a GPT-2-124M-sized one (ch. 19).

    python scripts/bench_generate.py                 # both parts, greedy, 3 repeats, 1 CPU thread
    python scripts/bench_generate.py --new 256 --repeats 5 --threads 2 --device cpu
    python scripts/bench_generate.py --size shipped  # only the shipped model's table (about a minute)
    python scripts/bench_generate.py --size 124m --batches 1,8 --new 200

The first part loads the shipped model (helpers.checkpoints.load_shipped_gpt: 12M parameters, a 4,096-token
BPE vocabulary, RMSNorm, SwiGLU and RoPE), encodes --prompt with its tokenizer, and generates --new tokens
greedily with helpers.generate.generate, first without the cache (every step re-reads the whole text) and
then with it (every step reads one token). It checks that both give the same tokens and prints the
best-of-repeats tokens/s of each and their ratio against the goal of 5x.

Why the ratio is a few times and not a hundred here: with the cache, a step costs ~2N = 24 million
floating-point operations, tens of microseconds of arithmetic, but it is also ~500 small PyTorch operations
(counted with torch.profiler: 31 matrix products, the RMSNorms, RoPE's rotations and their dtype
conversions, attention, reshapes) at a few microseconds of dispatch each - milliseconds that no cache
removes. The uncached path's cost grows with the length of the text, so the ratio grows with --new and with
the model's size. One thread by default: a second thread speeds up the uncached path's larger matrix
products more than the cached path's tiny ones, so --threads 2 gives a smaller ratio (and on an
oversubscribed machine spinning threads slow every operation down). Both the wall-time and the CPU-time
ratio are printed, with the load average: on a busy machine the absolute numbers are inflated.

The second part (--size 124m or both) runs a model of GPT-2 small's size - GPTConfig()'s defaults: 12
layers, 12 heads, 768 wide, vocabulary 50257, context 1024, 124M parameters - with seeded random weights
(the timing does not depend on what the weights say), from an 8-token random prompt, at each batch size of
--batches. Three ways per batch: no cache, the concatenating cache (the model's own: torch.cat copies every
cached key and value once per step) and the preallocated one (helpers.generate.StaticCacheModel: buffers
made once, each step written in place). All three must give the same tokens. Here a
cached step is ~250 million multiply-adds of matrix products, large enough that dispatch overhead no
longer dominates, so the speed-up over recomputation grows towards what the arithmetic predicts; the goal
is 10x at 200 new tokens. Tokens/s counts every row of the batch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from helpers.checkpoints import load_shipped_gpt
from helpers.generate import StaticCacheModel, generate
from helpers.gpt import GPT, GPTConfig
from helpers.runtime import pick_device

GOAL = 5.0  # the shipped model
GOAL_124M = 10.0  # GPT-2 small's size, 200 new tokens


def tokens_per_second(
    model, idx, new: int, use_cache: bool, repeats: int
) -> tuple[float, float, torch.Tensor]:
    """(tokens/s of wall time, tokens/s of this process's CPU time, the output), each the best of repeats.

    Tokens are counted over the whole batch: B rows x new tokens.
    """
    best_wall, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        if idx.device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        out = generate(model, idx, new, temperature=0, use_cache=use_cache)
        if idx.device.type == "cuda":
            torch.cuda.synchronize()
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu_start)
    tokens = idx.shape[0] * new
    return tokens / best_wall, tokens / best_cpu, out


def bench_shipped(device: torch.device, args) -> float:
    """The shipped BPE GPT, with and without the cache; returns the speed-up."""
    model, tokenizer, _ = load_shipped_gpt(device)
    new = 256 if args.new is None else args.new
    ids = tokenizer.encode(args.prompt)
    if not ids:
        raise SystemExit("--prompt must not be empty")
    idx = torch.tensor(ids)[None].to(device)  # (1, T)
    c = model.config
    print(
        f"shipped model: {c.n_layer} layers x {c.n_embd} wide, context {c.block_size} tokens, vocabulary "
        f"{c.vocab_size:,} BPE tokens, {model.num_parameters():,} parameters"
    )
    print(
        f"device {device.type}, {args.threads} threads, {new} new tokens from a "
        f"{idx.shape[1]}-token prompt ({args.prompt!r}), greedy, best of {args.repeats}; load average "
        f"{os.getloadavg()[0]:.1f} (1-minute)"
    )
    print()
    print(f"{'no cache tok/s':>15s} {'cache tok/s':>12s} {'speed-up':>9s} {'(CPU time)':>11s}")
    generate(model, idx, 8)  # warm up
    slow, slow_cpu, out_slow = tokens_per_second(model, idx, new, use_cache=False, repeats=args.repeats)
    fast, fast_cpu, out_fast = tokens_per_second(model, idx, new, use_cache=True, repeats=args.repeats)
    if not torch.equal(out_slow, out_fast):
        raise SystemExit("the cached and uncached greedy outputs differ: the KV cache is broken")
    print(f"{slow:15,.0f} {fast:12,.0f} {fast / slow:8.1f}x {fast_cpu / slow_cpu:10.1f}x")
    print()
    verdict = "met" if fast / slow >= GOAL else "NOT met"
    print(
        f"goal: speed-up >= {GOAL:.0f}x: {fast / slow:.1f}x {verdict}; "
        "greedy outputs identical with and without the cache"
    )
    return fast / slow


def bench_124m(device: torch.device, args) -> list[float]:
    """A GPT-2-small-sized model with random weights: no cache, concatenating cache, preallocated cache."""
    new = 200 if args.new is None else args.new
    torch.manual_seed(0)
    model = GPT(GPTConfig()).to(device).eval()  # GPT-2 small's sizes, seeded random weights
    static_model = StaticCacheModel(model, max_len=min(model.config.block_size, 8 + new))
    c = model.config
    print(
        f"GPT-2-124M-sized model (random weights): {c.n_layer} layers x {c.n_head} heads x {c.n_embd} wide, "
        f"vocabulary {c.vocab_size}, context {c.block_size}, {model.num_parameters():,} parameters"
    )
    print(
        f"device {device.type}, {args.threads} threads, {new} new tokens from an 8-token prompt, greedy, "
        f"best of {args.repeats}; load average {os.getloadavg()[0]:.1f} (1-minute)"
    )
    print()
    print(
        f"{'batch':>5s} {'no cache tok/s':>15s} {'concat tok/s':>13s} {'static tok/s':>13s} "
        f"{'concat/none':>12s} {'static/none':>12s} {'static/concat':>14s} {'(CPU time)':>11s}"
    )
    ratios = []
    for batch in args.batches:
        prompt = torch.randint(0, c.vocab_size, (batch, 8), generator=torch.Generator().manual_seed(batch))
        idx = prompt.to(device)  # (B, 8)
        generate(static_model, idx, 4, temperature=0)  # warm up (and make the buffers for this batch size)
        slow, slow_cpu, out_slow = tokens_per_second(model, idx, new, False, args.repeats)
        cat, _, out_cat = tokens_per_second(model, idx, new, True, args.repeats)
        static, static_cpu, out_static = tokens_per_second(static_model, idx, new, True, args.repeats)
        if not (torch.equal(out_slow, out_cat) and torch.equal(out_slow, out_static)):
            raise SystemExit("the three greedy outputs differ: a KV cache is broken")
        best = max(cat, static)
        ratios.append(best / slow)
        print(
            f"{batch:5d} {slow:15,.1f} {cat:13,.1f} {static:13,.1f} {cat / slow:11.1f}x "
            f"{static / slow:11.1f}x {static / cat:13.2f}x {static_cpu / slow_cpu:10.1f}x"
        )
    print()
    verdicts = ", ".join(
        f"batch {b}: {r:.1f}x {'met' if r >= GOAL_124M else 'NOT met'}"
        for b, r in zip(args.batches, ratios, strict=True)
    )
    print(
        f"goal: the cache (the faster of the two) >= {GOAL_124M:.0f}x faster than recomputation: {verdicts}; "
        "greedy outputs identical in all three ways"
    )
    return ratios


def batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(b) for b in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--batches takes positive ints separated by commas, got {text!r}")
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--new", type=int, default=None, help="new tokens to generate (default 256 shipped, 200 for 124M)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the fastest counts (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")
    parser.add_argument("--prompt", default="The", help="the shipped model's prompt (default 'The')")
    parser.add_argument(
        "--size",
        choices=("shipped", "124m", "both"),
        default="both",
        help="which model(s): the shipped GPT, a GPT-2-124M-sized one, or both (default)",
    )
    parser.add_argument(
        "--batches", type=batch_sizes, default=[1, 8], help="batch sizes for the 124M part (default 1,8)"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    met = True
    if args.size in ("shipped", "both"):
        met &= bench_shipped(device, args) >= GOAL
    if args.size == "both":
        print()
    if args.size in ("124m", "both"):
        met &= min(bench_124m(device, args)) >= GOAL_124M
    print(f"load average after {os.getloadavg()[0]:.1f} (1-minute; above the core count means contention)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
