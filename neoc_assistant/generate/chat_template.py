"""Which chat template a model gets, and which texts end its turn.

Order of preference:

1. **the GGUF's own template** (``tokenizer.chat_template``), rendered by
   llama-cpp-python's ``Jinja2ChatFormatter`` (a sandboxed Jinja environment,
   the same approach as Hugging Face);
2. **llama.cpp's built-in template for the model's family**, when the file
   has none or it fails to render. The family is read from the vocabulary's
   control tokens (``<start_of_turn>`` = gemma, ``<|eot_id|>`` = llama3,
   ``<|im_start|>`` = chatml, ``<|end|>``+``<|user|>`` = phi3, ``[INST]`` =
   mistral/llama2) and the prompt is built by ``llama_chat_apply_template``
   with that name. A model never gets markers its vocabulary lacks: Gemma
   given ChatML printed ``<|im_end|>user`` twenty times;
3. **ChatML** only as the last resort (``source`` says so and a warning is
   logged). ``models verify`` prints ``source``: ``describe_template`` makes the
   same choice from a file's vocabulary alone, whichever backend answers (an
   OpenAI-compatible server's model is not ours to inspect, a local file is).

Each choice comes with its **stop texts**: the end-of-turn and start-of-turn
markers of that template. The token stream stops at them even when the model
writes them as plain text pieces rather than as the control token.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from neoc_assistant.generate import model_file
from neoc_assistant.generate.llama_backend import init_backend
from neoc_assistant.generate.llama_model import LlamaModel

log = logging.getLogger(__name__)

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# family -> (markers that must be control tokens of the vocabulary, stop texts)
FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gemma": (("<start_of_turn>", "<end_of_turn>"), ("<end_of_turn>", "<start_of_turn>")),
    "llama3": (("<|start_header_id|>", "<|eot_id|>"), ("<|eot_id|>", "<|start_header_id|>")),
    "chatml": (("<|im_start|>", "<|im_end|>"), ("<|im_end|>", "<|im_start|>")),
    "phi3": (("<|user|>", "<|end|>"), ("<|end|>", "<|user|>", "<|assistant|>")),
    "mistral-v7": (("[INST]", "[/INST]", "[SYSTEM_PROMPT]"), ("[INST]", "</s>")),
    "llama2": (("[INST]",), ("[INST]", "</s>")),
}
# Texts that never belong in an answer, whatever the template (other families' markers).
ALWAYS_STOP = ("<|im_end|>", "<|im_start|>", "<end_of_turn>", "<start_of_turn>", "<|eot_id|>",
               "<|start_header_id|>", "<|endoftext|>", "<|end|>", "<|user|>", "</s>")

Messages = list[dict]


@dataclass
class ChatTemplate:
    render: Callable[[Messages], str]
    source: str  # "gguf", "llama.cpp built-in 'gemma' (no template in gguf)", "default-chatml (...)"
    stop_texts: tuple[str, ...]


def detect_family(control_texts: set[str]) -> str | None:
    for family, (markers, _) in FAMILIES.items():
        if all(m in control_texts for m in markers):
            return family
    return None


def _stops_for(source_text: str, eos_text: str) -> tuple[str, ...]:
    found = [m for m in ALWAYS_STOP if m in source_text]
    if eos_text and eos_text not in found:
        found.append(eos_text)
    return tuple(dict.fromkeys(found + [m for _, stops in FAMILIES.values() for m in stops if m in source_text]))


def _jinja(source: str, bos: str, eos: str) -> Callable[[Messages], str]:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(template=source, eos_token=eos, bos_token=bos, add_generation_prompt=True)

    def render(messages: Messages) -> str:
        return formatter(messages=messages).prompt  # type: ignore[arg-type]

    return render


def _builtin(llama_cpp, family: str) -> Callable[[Messages], str]:
    name = family.encode()

    def render(messages: Messages) -> str:
        arr = (llama_cpp.llama_chat_message * len(messages))()
        keep = []
        for i, m in enumerate(messages):
            role, content = m["role"].encode(), str(m.get("content", "")).encode("utf-8")
            keep += [role, content]
            arr[i].role, arr[i].content = role, content
        size = 4096 + sum(len(x) for x in keep) * 2
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_chat_apply_template(name, arr, len(messages), True, buf, size)
        if n > size:
            buf = ctypes.create_string_buffer(n + 1)
            n = llama_cpp.llama_chat_apply_template(name, arr, len(messages), True, buf, n + 1)
        if n < 0:
            raise ValueError(f"llama.cpp has no built-in chat template '{family}'")
        return buf.raw[:n].decode("utf-8", errors="replace")

    return render


_PROBE = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
          {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}]


def choose_template(gguf_template: str | None, control_texts: set[str], bos: str, eos: str,
                    llama_cpp, file_name: str = "model") -> ChatTemplate:
    """The template for this model (see module docstring); each candidate is test-rendered."""
    why = "no template in gguf"
    if gguf_template:
        try:
            render = _jinja(gguf_template, bos, eos)
            render(_PROBE)
            return ChatTemplate(render, "gguf", _stops_for(gguf_template, eos))
        except Exception as exc:  # noqa: BLE001 - a broken template falls back below
            why = f"gguf template failed: {str(exc)[:80]}"
            log.warning("%s: the chat template failed to render (%s)", file_name, exc)
    family = detect_family(control_texts)
    if family is not None:
        try:
            render = _builtin(llama_cpp, family)
            render(_PROBE)
            log.info("%s: %s; using llama.cpp's built-in '%s' template", file_name, why, family)
            return ChatTemplate(render, f"llama.cpp built-in '{family}' ({why})",
                                tuple(dict.fromkeys(FAMILIES[family][1] + ((eos,) if eos else ()))))
        except Exception as exc:  # noqa: BLE001
            log.warning("%s: built-in template '%s' failed (%s)", file_name, family, exc)
    log.warning("%s: %s and no known chat markers in its vocabulary; using ChatML", file_name, why)
    render = _jinja(CHATML, bos, eos)
    return ChatTemplate(render, f"default-chatml ({why})", _stops_for(CHATML, eos))


def template_for_model(info: model_file.GGUFInfo, model: LlamaModel) -> ChatTemplate:
    """The template a loaded model (or its vocabulary alone) gets: its GGUF template and markers."""
    bos = model.piece(model.bos, special=True).decode("utf-8", "ignore") if model.bos >= 0 else ""
    eos = model.piece(model.eos, special=True).decode("utf-8", "ignore") if model.eos >= 0 else ""
    return choose_template(info.chat_template, set(model.control_texts), bos, eos, model.ll, info.path.name)


def describe_template(path: Path, *, use_mmap: bool = True, use_mlock: bool = False) -> ChatTemplate:
    """The template ``path`` would get, from its vocabulary alone (no weights loaded): what
    ``models verify`` reports."""
    info = model_file.inspect_gguf(path)
    model = LlamaModel(init_backend(), path, use_mmap=use_mmap, use_mlock=use_mlock, vocab_only=True)
    try:
        return template_for_model(info, model)
    finally:
        model.free()
