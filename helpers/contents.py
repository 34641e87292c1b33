"""The book's table of contents, and which chapter introduces each module of `helpers`.

This is the plan in a form the tests can read (PLAN.md is the same plan in prose). Two rules follow from
it, and tests/test_conventions.py enforces both:

- a module may import only modules of its own chapter or of earlier ones (so a reader who has reached
  chapter N never needs code from later in the book, and there are no import cycles across chapters);
- a notebook of chapter N imports only modules of chapters up to N.

Chapter 0 holds the machinery every chapter uses (setup, sliders, exercises, shipped data).
A new module gets its line in MODULES in the same commit that adds it.
"""

from __future__ import annotations

from typing import NamedTuple


class Chapter(NamedTuple):
    number: int
    notebook: str  # notebooks/<notebook>.ipynb
    title: str


PARTS = {
    1: "Part I - Mathematical foundations",
    8: "Part II - Deep learning",
    15: "Part III - Large language models",
    22: "Part IV - Beyond text",
    26: "Part V - Efficiency and scale",
}

CHAPTERS = [
    Chapter(1, "01_linear_maps", "Vectors, matrices and linear maps"),
    Chapter(2, "02_geometry", "Geometry: norms, inner products, projections"),
    Chapter(3, "03_decompositions", "Matrix decompositions"),
    Chapter(4, "04_vector_calculus", "Vector calculus"),
    Chapter(5, "05_probability", "Probability and information"),
    Chapter(6, "06_optimisation", "Optimisation"),
    Chapter(7, "07_classic_ml", "Classic machine learning, with the maths"),
    Chapter(8, "08_autodiff", "Automatic differentiation from scratch"),
    Chapter(9, "09_nn_from_scratch", "Neural networks from scratch"),
    Chapter(10, "10_pytorch", "PyTorch fundamentals"),
    Chapter(11, "11_training_well", "Training deep networks well"),
    Chapter(12, "12_cnn", "Convolutional networks"),
    Chapter(13, "13_sequence_models", "Sequence models"),
    Chapter(14, "14_generative", "Generative models"),
    Chapter(15, "15_tokens", "Text to tokens"),
    Chapter(16, "16_attention", "Attention"),
    Chapter(17, "17_transformer_block", "The transformer block"),
    Chapter(18, "18_pretraining", "GPT from scratch: pretraining"),
    Chapter(19, "19_generation", "Generating text"),
    Chapter(20, "20_finetuning", "Fine-tuning"),
    Chapter(21, "21_open_weights", "Running open weights"),
    Chapter(22, "22_vision_transformers", "Vision transformers"),
    Chapter(23, "23_audio", "Audio"),
    Chapter(24, "24_video", "Video"),
    Chapter(25, "25_multimodal", "Multimodal"),
    Chapter(26, "26_cost", "Counting the cost"),
    Chapter(27, "27_cheaper_models", "Making models cheaper"),
    Chapter(28, "28_faster_attention", "Faster attention and its alternatives"),
    Chapter(29, "29_scaling_out", "Scaling out"),
]

# module of helpers (a package counts as one module) -> the chapter that introduces it
MODULES = {
    "contents": 0,
    "data": 0,
    "exercises": 0,
    "runtime": 0,
    "widgets": 0,
    "linalg": 1,
    "plots": 1,
    "digits": 2,
    "geometry": 2,
    "decompositions": 3,
    "calculus": 4,
    "probability": 5,
    "optim": 6,
    "classic": 7,
    "autograd": 8,
    "autograd_plots": 8,
    "nn_numpy": 9,
    "mlp": 10,
    "precision": 10,
    "train": 10,
    "datasets": 11,
    "initialization": 11,
    "normalization": 11,
    "schedules": 11,
    "cnn": 12,
    "corpus": 13,
    "rnn": 13,
    "autoencoders": 14,
    "diffusion": 14,
    "generative": 14,
    "tokenizers": 15,
    "attention": 16,
    "transformer": 17,
    "checkpoints": 18,
    "gpt": 18,
    "pretrain": 18,
    "watch": 18,
    "generate": 19,
    "finetune": 20,
    "instructions": 20,
    "lora": 20,
    "chat": 21,
    "hub": 21,
    "llama": 21,
    "stand_ins": 21,
    "weights": 21,
    "vit": 22,
    "audio": 23,
    "video": 24,
    "multimodal": 25,
    "cost": 26,
    "scaling": 26,
    "distill": 27,
    "quantize": 27,
    "sparsity": 27,
    "speculative": 27,
    "fast_attention": 28,
    "ssm": 28,
    "distributed": 29,
}


def chapter_of(module: str) -> int:
    """The chapter introducing `module`: "helpers.gpt" or "gpt" -> 18, "helpers.tokenizers.basic" -> 15."""
    parts = module.split(".")
    name = parts[1] if parts[0] == "helpers" and len(parts) > 1 else parts[0]
    if name not in MODULES:
        raise KeyError(
            f"helpers.{name} is not in helpers.contents.MODULES: add the chapter that introduces it"
        )
    return MODULES[name]
