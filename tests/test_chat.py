"""helpers.chat: chat templates rendered by the book's sandboxed Jinja against transformers'
apply_chat_template on the same tokenizer folder (a ChatML template like Qwen's and SmolLM2's, a Llama-3-style
one; system, user and assistant turns, several turns, with and without the generation prompt); loading a
template from tokenizer_config.json or chat_template.jinja; the sandbox; clear errors; and, when the real
SmolLM2 files are in the cache, its own template."""

from __future__ import annotations

import json

import jinja2
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from helpers.chat import ChatTemplate, load_chat_template, render_chat
from helpers.hub import HubError, fetch_model

# ChatML, as Qwen2.5 and SmolLM2 use it: a default system turn when the chat has none
CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Llama 3 style: the bos token once, a header per turn, contents stripped, <|eot_id|> closing each turn;
# roles must be known ones. Written over several lines, as many releases do: {%- and -%} eat the newlines.
LLAMA3 = """{{- bos_token }}
{%- for message in messages %}
    {%- if message['role'] not in ['system', 'user', 'assistant'] %}
        {{- raise_exception('unknown role: ' + message['role']) }}
    {%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}
    {{- message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

SPECIAL = {
    "chatml": {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
}
TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3}

CHATS = {
    "one user turn": [{"role": "user", "content": "What is a tensor?"}],
    "system and user": [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "Why do GPUs like matrix products?"},
    ],
    "several turns": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "  And times 3?  "},
        {"role": "assistant", "content": "12, naïvely: ∑ (ünïcode) kept"},
        {"role": "user", "content": "Thanks!\nBye."},
    ],
}


def write_folder(path, kind: str, in_config: bool = True):
    """A tokenizer folder as a release ships it: tokenizer.json + tokenizer_config.json with the template
    (or the template in chat_template.jinja)."""
    tokens = [t for t in SPECIAL[kind].values() if t] + ["[UNK]", "hello"]
    tokenizer = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]"}
    for key, value in SPECIAL[kind].items():
        if value is not None:  # the eos as an AddedToken dict, the way many releases write it
            config[key] = (
                {"__type": "AddedToken", "content": value, "special": True} if key == "eos_token" else value
            )
    if in_config:
        config["chat_template"] = TEMPLATES[kind]
    else:
        (path / "chat_template.jinja").write_text(TEMPLATES[kind], encoding="utf-8")
    (path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
@pytest.mark.parametrize("chat", sorted(CHATS))
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_rendering_matches_transformers_apply_chat_template(tmp_path, kind, chat, add_generation_prompt):
    folder = write_folder(tmp_path, kind)
    theirs = PreTrainedTokenizerFast.from_pretrained(folder).apply_chat_template(
        CHATS[chat], tokenize=False, add_generation_prompt=add_generation_prompt
    )
    ours = load_chat_template(folder).render(CHATS[chat], add_generation_prompt=add_generation_prompt)
    assert ours == theirs
    assert ours.endswith("assistant\n" if kind == "chatml" else "assistant<|end_header_id|>\n\n") == (
        add_generation_prompt
    )


def test_what_the_templates_produce():
    chat = CHATS["system and user"]
    chatml = render_chat(chat, CHATML)
    assert chatml == (
        "<|im_start|>system\nYou answer in one sentence.<|im_end|>\n"
        "<|im_start|>user\nWhy do GPUs like matrix products?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_chat(chat[1:], CHATML).startswith("<|im_start|>system\nYou are a helpful assistant.")
    llama = ChatTemplate(LLAMA3, {"bos_token": "<|begin_of_text|>"}).render(
        chat[1:], add_generation_prompt=False
    )
    assert llama == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        "Why do GPUs like matrix products?<|eot_id|>"
    )


def test_the_template_can_live_in_chat_template_jinja(tmp_path):
    folder = write_folder(tmp_path, "llama3", in_config=False)
    loaded = load_chat_template(folder)
    assert loaded.template == LLAMA3
    assert loaded.special_tokens == {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "unk_token": "[UNK]",
    }
    theirs = PreTrainedTokenizerFast.from_pretrained(folder).apply_chat_template(
        CHATS["several turns"], tokenize=False, add_generation_prompt=True
    )
    assert loaded.render(CHATS["several turns"]) == theirs


def test_named_templates_in_a_list(tmp_path):
    config = {
        "chat_template": [{"name": "default", "template": CHATML}, {"name": "tool_use", "template": "x"}]
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert load_chat_template(tmp_path).template == CHATML
    assert load_chat_template(tmp_path, name="tool_use").template == "x"
    with pytest.raises(ValueError, match="not 'rag'"):
        load_chat_template(tmp_path, name="rag")


# --- the sandbox ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ messages.__class__.__mro__ }}",  # a way out to Python's internals
        "{{ ''.__class__.__subclasses__() }}",
        "{% set _ = messages.append({'role': 'user', 'content': 'x'}) %}",  # changing the caller's data
        "{% set _ = messages[0].update({'content': 'x'}) %}",
    ],
)
def test_a_template_cannot_escape_the_sandbox(template):
    chat = CHATS["one user turn"]
    with pytest.raises(jinja2.exceptions.SecurityError):
        render_chat(chat, template)
    assert chat == [{"role": "user", "content": "What is a tensor?"}]


def test_a_template_can_refuse_a_chat():
    with pytest.raises(jinja2.exceptions.TemplateError, match="unknown role: tool"):
        render_chat([{"role": "tool", "content": "42"}], LLAMA3, bos_token="")


def test_tojson_keeps_unicode():
    assert render_chat([{"role": "user", "content": "ünï"}], "{{ messages | tojson }}") == (
        '[{"role": "user", "content": "ünï"}]'
    )


# --- clear errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("hello", "must be a list"),
        ({"role": "user", "content": "hi"}, "must be a list"),
        ([{"content": "hi"}], "message 0 needs a string 'role'"),
        (
            [{"role": "user", "content": "hi"}, {"role": "user", "content": 3}],
            r"message 1 \(user\) needs a string",
        ),
        (["hi"], "message 0 needs a string 'role'"),
    ],
)
def test_bad_messages_get_a_clear_error(messages, message):
    with pytest.raises(ValueError, match=message):
        render_chat(messages, CHATML)


def test_no_template_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="template must be"):
        render_chat(CHATS["one user turn"], "  ")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    with pytest.raises(ValueError, match="no chat template.*base model"):
        load_chat_template(tmp_path)


# --- the real model, when this machine has it -------------------------------------------------------------


def test_smollm2_own_template_when_it_is_in_the_cache():
    try:
        folder = fetch_model("smollm2-360m-instruct")
    except HubError:
        pytest.skip("SmolLM2-360M-Instruct is not in this machine's Hugging Face cache (see helpers.hub)")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    for chat in CHATS.values():
        theirs = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        assert load_chat_template(folder).render(chat) == theirs
    assert "<|im_start|>assistant\n" in load_chat_template(folder).render(CHATS["one user turn"])
