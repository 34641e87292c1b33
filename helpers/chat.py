"""Chat templates (chapter 21): turning a conversation into the exact text an instruct model was tuned on.

What this module adds over helpers.generate (which continues token ids) and helpers.hub (which fetches a
model's folder):

    load_chat_template(folder)            the model's own template (a Jinja program) and its special tokens
    render_chat(messages, template, ...)  the conversation as one string, ready to tokenize
    ChatTemplate.render(messages)         the same, with the model's bos / eos tokens filled in

An instruct model never sees "messages": it sees one long text in which each turn is wrapped in markers it
learned during fine-tuning - ChatML (Qwen, SmolLM2) writes <|im_start|>user\\n...<|im_end|>, Llama 3 writes
<|start_header_id|>user<|end_header_id|>\\n\\n...<|eot_id|>. A prompt in the wrong format still runs, but
the model answers worse, so the release ships its format as a Jinja template: the "chat_template" of
tokenizer_config.json (or a chat_template.jinja file beside it). add_generation_prompt=True ends the text
with the opening of an assistant turn, so the model's next tokens are its answer; it stops at the turn's
end token (generate's eos_token_id).

A template is code from the internet, so it runs in Jinja's immutable sandbox (no attribute access to
Python internals, no changing the messages), with the few helpers templates expect: raise_exception,
a tojson that keeps non-ASCII text, strftime_now. tests/test_chat.py renders the same conversations with
transformers' apply_chat_template and checks the strings are identical.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


def _raise_exception(message: str):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _environment() -> ImmutableSandboxedEnvironment:
    # trim_blocks / lstrip_blocks: a {% tag %} on its own line leaves no newline or indent behind, which is
    # how template authors write them (and what transformers assumes)
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def check_messages(messages: Sequence[Mapping]) -> list[dict]:
    """The messages as plain dicts; ValueError naming the first one without a string role and content."""
    if isinstance(messages, (str, Mapping)) or not isinstance(messages, Sequence):
        raise ValueError(
            f"messages must be a list of {{'role': ..., 'content': ...}} dicts, got {type(messages)}"
        )
    plain = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ValueError(
                f"message {i} needs a string 'role' (system, user or assistant), got {message!r}"
            )
        if not isinstance(message.get("content"), str):
            raise ValueError(f"message {i} ({message['role']}) needs a string 'content', got {message!r}")
        plain.append(dict(message))
    return plain


def render_chat(
    messages: Sequence[Mapping], template: str, add_generation_prompt: bool = True, **variables
) -> str:
    """Render a conversation with a Jinja chat template. variables are what the template may refer to
    besides `messages` and `add_generation_prompt`: usually bos_token and eos_token."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError("template must be the text of a Jinja chat template")
    compiled = _environment().from_string(template)
    return compiled.render(
        messages=check_messages(messages), add_generation_prompt=add_generation_prompt, **variables
    )


@dataclass(frozen=True)
class ChatTemplate:
    """A model's chat template and the special tokens it may use."""

    template: str
    special_tokens: dict[str, str]  # e.g. {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}

    def render(self, messages: Sequence[Mapping], add_generation_prompt: bool = True) -> str:
        return render_chat(messages, self.template, add_generation_prompt, **self.special_tokens)


def _token_text(value) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or {"content": ...} (an AddedToken)."""
    if isinstance(value, Mapping):
        value = value.get("content")
    return value if isinstance(value, str) else None


def load_chat_template(folder: str | Path, name: str = "default") -> ChatTemplate:
    """The chat template of the model in `folder`: chat_template.jinja, or the "chat_template" entry of
    tokenizer_config.json (a string, or a list of named templates: `name` picks one); and the special tokens
    (bos, eos, unk, pad) written in tokenizer_config.json."""
    folder = Path(folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    template = config.get("chat_template")
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, Mapping)}
        if name not in named:
            raise ValueError(f"{folder.name} has chat templates {sorted(named)}, not {name!r}")
        template = named[name]
    if not isinstance(template, str) or not template.strip():
        raise ValueError(
            f"{folder} has no chat template (no chat_template.jinja, and no 'chat_template' in "
            "tokenizer_config.json): it is probably a base model, not an instruct model"
        )
    keys = ("bos_token", "eos_token", "unk_token", "pad_token")
    special = {key: text for key in keys if (text := _token_text(config.get(key))) is not None}
    return ChatTemplate(template=template, special_tokens=special)
