"""Stand-ins for open-weight models (chapter 21): small random releases in the real models' layout.

What this module adds over helpers.llama (which loads a Llama-family folder) and helpers.chat (which renders
a chat template): a folder to load when the real files are not on the machine, so that a chapter runs the
same code on it and only the numbers change.

    CHATML_TEMPLATE                 a ChatML chat template (the format of SmolLM2-Instruct and Qwen)
    make_chat_stand_in(folder)      a tiny random Llama chat model laid out like SmolLM2-360M-Instruct:
                                    config.json + model.safetensors (transformers' save_pretrained),
                                    tokenizer.json (a byte-level BPE trained by `tokenizers` on the book's
                                    corpus, with ChatML's special tokens) and tokenizer_config.json (the
                                    template and the bos / eos / pad tokens)

The weights are random, so its answers are gibberish; what it proves is that every step - template, token
ids, loading, generation that stops at the end-of-turn token, decoding - runs, and runs exactly as
`transformers` does on the same files (tests/test_weights.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer

from helpers.corpus import load_corpus

# ChatML: every turn is <|im_start|>role\n content <|im_end|>\n; a default system turn when none is given;
# add_generation_prompt opens the assistant's turn. Written here for the stand-in; a real model ships its own.
CHATML_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# SmolLM2's first three ids, in its order: <|endoftext|> 0, <|im_start|> 1, <|im_end|> 2
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def make_chat_stand_in(
    folder: str | Path,
    vocab_size: int = 512,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_kv_head: int = 2,
    block_size: int = 256,
    seed: int = 0,
) -> Path:
    """Write a small random Llama chat model into `folder` (created if needed) and return it as a Path.

    The tokenizer is trained on the first 60,000 characters of the book's corpus; the model has grouped-query
    attention (n_kv_head < n_head) and a tied head, like SmolLM2. Its weights are drawn from N(0, 0.1^2) so
    that its logits are far from uniform. ValueError if the sizes do not make a valid model.
    """
    if vocab_size < 300:
        raise ValueError(
            f"vocab_size must be at least 300 (256 bytes, the special tokens, merges), got {vocab_size}"
        )
    if n_embd % n_head or n_head % n_kv_head or (n_embd // n_head) % 2:
        raise ValueError(
            f"n_embd ({n_embd}) must split into n_head ({n_head}) heads of an even size, and n_kv_head "
            f"({n_kv_head}) must divide n_head"
        )
    from transformers import LlamaConfig, LlamaForCausalLM  # heavy: imported only when a stand-in is built

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(
        [load_corpus()[:60_000]],
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tok.save(str(folder / "tokenizer.json"))
    bos, eos = (tok.token_to_id(t) for t in SPECIAL_TOKENS[1:])
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=n_embd,
        intermediate_size=int(8 * n_embd / 3) // 16 * 16,  # SwiGLU's usual width, a multiple of 16
        num_hidden_layers=n_layer,
        num_attention_heads=n_head,
        num_key_value_heads=n_kv_head,
        max_position_embeddings=block_size,
        tie_word_embeddings=True,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    model.save_pretrained(folder)
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHATML_TEMPLATE,
        "bos_token": SPECIAL_TOKENS[1],
        "eos_token": SPECIAL_TOKENS[2],
        "pad_token": SPECIAL_TOKENS[2],
        "model_max_length": block_size,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    return folder
