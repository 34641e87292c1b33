"""Exercises for chapter 18: GPT from scratch, pretraining."""

import math

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register

# 18.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="18.1",
        title="the loss of a model that knows nothing",
        checker=matches_value(math.log(65), atol=1e-3, what="the loss"),
        hint="an untrained GPT spreads its bet evenly over the vocabulary. Cross-entropy is -log(probability "
        "given to the right character), in nats (natural log).",
        solution=math.log(65),
        wrong=math.log2(65),  # bits, not nats
        explanation="With 65 characters a uniform guess gives each probability 1/65, so the loss is "
        "-ln(1/65) = ln 65 = 4.174 nats. PyTorch's cross_entropy uses the natural log; in bits it would be "
        "log2(65) = 6.02. A first loss far above ln V means the initialisation is too confident.",
    )
)


# 18.2 ---------------------------------------------------------------------------------------------------
def gpt_parameters(V, T, L, C):
    """Parameters of a GPT with no biases and a tied head: embeddings, L blocks, the final LayerNorm."""
    embeddings = V * C + T * C  # wte (shared with lm_head) and wpe
    block = 12 * C * C + 2 * C  # c_attn 3C^2, attn.c_proj C^2, c_fc 4C^2, mlp.c_proj 4C^2, ln_1 and ln_2
    return embeddings + L * block + C  # ln_f


def _untied(V, T, L, C):
    return gpt_parameters(V, T, L, C) + V * C  # counts lm_head as a second V x C matrix


def _sizes(rng: np.random.Generator) -> tuple:
    return tuple(
        np.array(int(v))
        for v in (rng.integers(2, 300), rng.integers(1, 512), rng.integers(1, 13), 16 * rng.integers(1, 17))
    )


register(
    Exercise(
        key="18.2",
        title="counting a GPT's parameters",
        checker=matches_function(gpt_parameters, _sizes, trials=20, atol=0.5),
        hint="add up wte (V x C), wpe (T x C), per block c_attn (C x 3C), attn.c_proj (C x C), "
        "c_fc (C x 4C), mlp.c_proj (4C x C) and two LayerNorm weights (C each), then ln_f (C). The head is "
        "tied to wte.",
        solution=gpt_parameters,
        wrong=_untied,
        explanation="Per block 3C^2 + C^2 + 4C^2 + 4C^2 = 12C^2 in matrices plus 2C in LayerNorm scales. "
        "The head costs nothing extra because it *is* wte. For the notebook's model (V=103, T=64, L=4, "
        "C=128) that is 13,184 + 8,192 + 4 x 196,864 + 128 = 808,960.",
    )
)


# 18.3 ---------------------------------------------------------------------------------------------------
def clip_by_norm(g, max_norm):
    """Scale the gradient vector g down to norm max_norm if it is longer; leave it alone otherwise."""
    norm = np.sqrt(np.sum(g**2))
    return g * min(1.0, float(max_norm) / (norm + 1e-6))


def _always_rescale(g, max_norm):
    return g * float(max_norm) / (np.sqrt(np.sum(g**2)) + 1e-6)  # also stretches short gradients


def _gradients(rng: np.random.Generator) -> tuple:
    g = rng.normal(size=int(rng.integers(1, 30))) * rng.choice([0.01, 1.0, 10.0])
    return g, np.array(rng.uniform(0.1, 2.0))


register(
    Exercise(
        key="18.3",
        title="gradient clipping",
        checker=matches_function(clip_by_norm, _gradients, trials=40, atol=1e-6),
        hint="compute the gradient's length ||g|| = sqrt(sum g^2). Multiply g by min(1, max_norm / ||g||) "
        "(torch adds 1e-6 to the norm so that a zero gradient does not divide by zero).",
        solution=clip_by_norm,
        wrong=_always_rescale,
        explanation="Clipping keeps the direction of the gradient and caps its length. It only acts on the "
        "rare steps where the gradient is unusually large (a bad batch, a loss spike), so that one step "
        "cannot throw the weights far away. torch.nn.utils.clip_grad_norm_ does this with the norm taken "
        "over all parameters together.",
    )
)

# 18.4 ---------------------------------------------------------------------------------------------------
_DECAYED = 4 * 12 * 128 * 128  # the four Linear matrices of each of the 4 blocks
register(
    Exercise(
        key="18.4",
        title="what weight decay acts on",
        checker=matches_value(_DECAYED, what="the number of decayed parameters"),
        hint="param_groups decays only the weight matrices of Linear layers: c_attn, attn.c_proj, c_fc and "
        "mlp.c_proj in every block. Not wte (even though lm_head shares it), not wpe, not the LayerNorms.",
        solution=_DECAYED,
        wrong=_DECAYED + 103 * 128 + 64 * 128,  # every 2-D tensor, embeddings included
        explanation="Each block has 12 C^2 = 196,608 parameters in its four matrices, so 4 blocks give "
        "786,432 - 97% of the model. The embeddings are 2-D too, but decaying them shrinks the rows of rare "
        "characters towards zero just because they are rarely seen; LayerNorm scales are meant to sit near "
        "1, not 0.",
    )
)
