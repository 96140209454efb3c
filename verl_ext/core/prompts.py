"""Policy prompts: the text the policy sees after the image, and the one rule that resolves a prompt setting.

Every variant shares one answer contract, because the reward reads only the content of
``<answer>…</answer>`` (``verl_ext.core.answer.extract_answer``): reasoning goes inside
``<think>`` tags, the final answer is a single label, or the word ``None`` to abstain.
Only the opening instruction differs between variants.

- ``general``: the training prompt of the paper (first line "Classify the image.").
- ``specific``: the "be specific" prompting baseline (first line "Classify the image, be specific.").
- ``calibrated``, ``elimination``, ``high_precision``, ``max_correctness``, ``max_specificity``:
  evaluation-only prompts for the base model.

The wording is our own; it follows the paper's published description of its prompt, not the
original files. Pure text: no I/O, no verl, no images. The ``<image>`` placeholder is added by
:func:`prompt_messages`, never written into a variant's text.

Every place that takes a prompt setting (the dataset's ``data.speciarl.prompt_variant``, the
evaluation CLI's ``--prompt-variant`` and the recipes' dry run) resolves it with
:func:`resolve_prompt_text`, so the three cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping, Optional

#: The placeholder verl's RLHFDataset replaces with one image (``data.image_key`` rows).
IMAGE_PLACEHOLDER = "<image>"

#: A prompt setting that starts with this reads the prompt from the file after it.
FILE_PREFIX = "file://"

_ANSWER_CONTRACT = (
    "First think it through step by step inside <think> </think> tags. "
    "Then give your final answer inside <answer> </answer> tags.\n"
    "Use exactly this layout:\n"
    "<think> your reasoning </think>\n"
    "<answer> your label </answer>\n"
    "The answer must be one single label, or the word 'None' if you choose to abstain. "
    "Follow this format strictly."
)


def _variant(opening: str) -> str:
    return f"{opening}\n{_ANSWER_CONTRACT}"


#: Name -> full prompt text. ``general`` is the default for training and evaluation.
PROMPT_VARIANTS: Mapping[str, str] = {
    "general": _variant("Classify the image."),
    "specific": _variant("Classify the image, be specific."),
    "calibrated": _variant(
        "Classify the image. Being correct matters most: give a fine-grained label only when "
        "you are confident in it, otherwise give the most specific label you are sure of."
    ),
    "elimination": _variant(
        "Classify the image. Propose at most three candidate labels, rule out the ones the "
        "visual evidence contradicts, and answer with the survivor; if none survives, answer "
        "with the most general label you are certain of, or 'None'."
    ),
    "high_precision": _variant(
        "Classify the image. Do not guess: if you are not sure what it shows, abstain by "
        "answering 'None'."
    ),
    "max_correctness": _variant(
        "Classify the image. Choose the most conservative label that is certainly correct, "
        "even if it is broad."
    ),
    "max_specificity": _variant(
        "Classify the image. Always answer with the most fine-grained label you can name, "
        "down to species, model or variant; never abstain."
    ),
}

DEFAULT_VARIANT = "general"


class PromptVariantError(ValueError):
    """A prompt variant name or custom prompt text that cannot be used."""


# A prompt is a sentence; one bare word (letters, digits, "_" or "-") is a variant name.
_ONE_WORD = re.compile(r"[A-Za-z0-9_\-]+")


def resolve_prompt_text(spec: str, *, read_file: Optional[Callable[[str], str]] = None) -> str:
    """The prompt text for a prompt setting: a variant name, the user's own text, or ``file://path``.

    - a key of :data:`PROMPT_VARIANTS` selects that variant;
    - one bare word that is not a key is a misspelt variant name, and an error (it would
      otherwise silently become a one-word prompt);
    - ``file://path`` is read with ``read_file`` (the caller's I/O; the core does none) and
      its stripped content is custom text, never a variant name;
    - any other non-empty string is custom text. Custom text must not contain ``<image>``:
      the image is placed once, before the text.

    >>> resolve_prompt_text("specific").splitlines()[0]
    'Classify the image, be specific.'
    >>> resolve_prompt_text("Name the bird in this photo.")
    'Name the bird in this photo.'
    >>> resolve_prompt_text("specfic")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    verl_ext.core.prompts.PromptVariantError: unknown prompt variant 'specfic'; choose one of [...
    """
    if not isinstance(spec, str) or not spec.strip():
        raise PromptVariantError(
            f"prompt variant must be one of {sorted(PROMPT_VARIANTS)}, custom text or {FILE_PREFIX}path, got {spec!r}"
        )
    if spec in PROMPT_VARIANTS:
        return PROMPT_VARIANTS[spec]
    if spec.startswith(FILE_PREFIX):
        path = spec[len(FILE_PREFIX):]
        return _custom_text(_read_prompt_file(path, read_file), f"prompt file {path}")
    if _ONE_WORD.fullmatch(spec):
        raise PromptVariantError(
            f"unknown prompt variant {spec!r}; choose one of {sorted(PROMPT_VARIANTS)}, write a full custom "
            f"prompt, or give {FILE_PREFIX}path"
        )
    return _custom_text(spec, "custom prompt text")


def _read_prompt_file(path: str, read_file: Optional[Callable[[str], str]]) -> str:
    if read_file is None:
        raise PromptVariantError(f"{FILE_PREFIX}{path}: prompt files are not accepted here")
    try:
        text = read_file(path)
    except OSError as error:
        raise PromptVariantError(f"cannot read prompt file {path}: {error.strerror or error}") from error
    if not text.strip():
        raise PromptVariantError(f"prompt file {path} is empty")
    return text.strip()


def _custom_text(text: str, what: str) -> str:
    if IMAGE_PLACEHOLDER in text:
        raise PromptVariantError(
            f"{what} must not contain {IMAGE_PLACEHOLDER!r}: the image is placed once, before the text"
        )
    return text


def policy_response(reasoning: str, answer: str) -> str:
    """A response in the format every prompt asks for: reasoning in ``<think>``, the label in ``<answer>``.

    What supervised targets (SFT) and scripted test rollouts are written in, so that the
    reward's parser reads them exactly as it reads the policy's own text.

    >>> policy_response("A small bird with a red crest.", "Northern Cardinal")
    '<think>A small bird with a red crest.</think><answer>Northern Cardinal</answer>'
    """
    return f"<think>{reasoning}</think><answer>{answer}</answer>"


def prompt_messages(text: str) -> list[dict]:
    """Chat messages for one image and an already resolved prompt text: one user turn, ``<image>`` first.

    No system turn is set (the paper sets none; the chat template adds its default).
    """
    return [{"role": "user", "content": f"{IMAGE_PLACEHOLDER}{text}"}]


def build_prompt_messages(spec: str = DEFAULT_VARIANT) -> list[dict]:
    """:func:`prompt_messages` for a prompt setting (a variant name or custom text)."""
    return prompt_messages(resolve_prompt_text(spec))
