"""Write data/denoiser_digits.safetensors and .json: chapter 14's denoiser, trained as section 14.5 trains it.

    OMP_WAIT_POLICY=PASSIVE python data/make_denoiser.py

The same lines as the chapter: `setup(seed=0)` (two threads unless $BOOK_THREADS says otherwise), the
book's digits split, a cosine schedule of T = 200 steps, `Denoiser(hidden=256, blocks=3)` after
`torch.manual_seed(0)`, `diffusion_loss` with the min-SNR cap 5, `train` for 250 epochs with cosine decay
(helpers.diffusion.DENOISER_RECIPE). About a minute on two cores. On one machine with the same thread count
the weights are the same bit for bit as the chapter's own run would train (`TRAIN_HERE = True` there).
Then update data/MANIFEST.sha256 (`sha256sum data/denoiser_digits.*`). `--epochs 1 --out DIR` is a quick
trial run (the tests make one).
"""

import argparse
from pathlib import Path

import torch

from helpers.diffusion import (
    DENOISER_RECIPE,
    Denoiser,
    cosine_schedule,
    diffusion_loss,
    save_denoiser,
    to_signed,
)
from helpers.digits import load_digits_split
from helpers.generative import train
from helpers.runtime import setup


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=DENOISER_RECIPE["epochs"], help="training epochs")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="folder for the two files")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    recipe = {**DENOISER_RECIPE, "epochs": args.epochs}

    setup(seed=recipe["seed"], device="cpu", quiet=True)
    X_train, *_ = load_digits_split().tensors(device="cpu")  # (1347, 64) in [0, 1]
    schedule = cosine_schedule(recipe["T"])
    torch.manual_seed(recipe["seed"])
    model = Denoiser(hidden=recipe["hidden"], blocks=recipe["blocks"])

    def denoising_loss(model, x0, generator):
        return diffusion_loss(model, x0, schedule, generator, snr_cap=recipe["snr_cap"])

    history = train(
        model,
        denoising_loss,
        to_signed(X_train),
        epochs=recipe["epochs"],
        cosine_decay=recipe["cosine_decay"],
        progress=False,
    )
    save_denoiser(model, history, recipe, args.out)
    print(
        f"wrote {args.out}/denoiser_digits.safetensors and .json: last epoch loss {history.step_loss[-1]:.4f}"
    )


if __name__ == "__main__":
    main()
