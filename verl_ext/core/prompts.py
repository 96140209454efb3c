"""Policy prompts: the text the policy sees after the image (``speciarl-method.md`` §7).

Every variant shares one answer contract, because the reward reads only the content of
``<answer>…</answer>`` (``verl_ext.core.answer.extract_answer``): reasoning goes inside
``<think>`` tags, the final answer is a single label, or the word ``None`` to abstain.
Only the opening instruction differs between variants.

- ``general``: the training prompt of the paper (first line "Classify the image.").
- ``specific``: the "be specific" prompting baseline (first line "Classify the image, be specific.").
- ``calibrated``, ``elimination``, ``high_precision``, ``max_correctness``, ``max_specificity``:
  evaluation-only prompts for the base model.

The wording is our own; it follows the published description, not the original files.
Pure text: no I/O, no verl, no images. The ``<image>`` placeholder is added by
:func:`build_prompt_messages`, never written into a variant's text.
"""

from __future__ import annotations

from typing import Mapping

#: The placeholder verl's RLHFDataset replaces with one image (``verl-0.9.md``).
IMAGE_PLACEHOLDER = "<image>"

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


def resolve_prompt_text(variant_or_text: str) -> str:
    """Return the prompt text for a variant name, or the custom text itself.

    A string that names a key of :data:`PROMPT_VARIANTS` selects that variant; any other
    non-empty string is taken as the user's own prompt. Custom text must not contain the
    ``<image>`` placeholder, since the image is placed once, before the text.
    """
    if not isinstance(variant_or_text, str) or not variant_or_text.strip():
        raise PromptVariantError(
            f"prompt variant must be one of {sorted(PROMPT_VARIANTS)} or non-empty custom text, "
            f"got {variant_or_text!r}"
        )
    if variant_or_text in PROMPT_VARIANTS:
        return PROMPT_VARIANTS[variant_or_text]
    if IMAGE_PLACEHOLDER in variant_or_text:
        raise PromptVariantError(
            f"custom prompt text must not contain {IMAGE_PLACEHOLDER!r}: the image is placed "
            "once, before the text"
        )
    return variant_or_text


def build_prompt_messages(variant_or_text: str = DEFAULT_VARIANT) -> list[dict]:
    """Chat messages for one image: a single user turn, ``<image>`` first, then the text.

    No system turn is set (the paper sets none; the chat template adds its default).
    """
    text = resolve_prompt_text(variant_or_text)
    return [{"role": "user", "content": f"{IMAGE_PLACEHOLDER}{text}"}]
