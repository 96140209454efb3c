"""A tiny offline stand-in for the Qwen2.5-VL tokenizer.

No model hub is reachable in CI, so tests cannot download the real tokenizer. This one is
trained in milliseconds with the ``tokenizers`` library and keeps what the code under test
relies on: byte-level BPE behind the Qwen2 pre-tokenizer split (so every string round-trips
exactly), Qwen2.5-VL's special tokens in Qwen's order, ``<|im_end|>`` as end of sequence,
``<|endoftext|>`` as padding, and a ChatML chat template that emits the vision tokens for
each image item. The token ids differ from Qwen's; code must read them from the tokenizer.

Unlike the real tokenizer, no NFC normaliser runs, so decoding gives back exactly the text
that was encoded, whatever its Unicode form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import PreTrainedTokenizerFast

#: The Qwen2 pre-tokenizer split (letters, single digits, punctuation runs, newlines, spaces).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: Qwen2.5-VL's added tokens in their id order, with Qwen's ``special`` flag.
QWEN25VL_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)

EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"
IMAGE_PAD_TOKEN = "<|image_pad|>"
VIDEO_PAD_TOKEN = "<|video_pad|>"
VISION_START_TOKEN = "<|vision_start|>"
VISION_END_TOKEN = "<|vision_end|>"

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

#: ChatML with Qwen2.5-VL's vision placeholders. Content may be a string or a list of items
#: (``{"type": "image"}``, ``{"type": "video"}``, ``{"type": "text", "text": ...}``, or the
#: ``{"image": ...}`` / ``{"image_url": ...}`` shorthands). Like Qwen's template, it adds a
#: default system turn when the conversation has none.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}"
    "{{ message['content'] }}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' or 'image' in item or 'image_url' in item -%}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif item['type'] == 'video' or 'video' in item -%}"
    "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif 'text' in item -%}"
    "{{ item['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- endif -%}"
)

#: Vocabulary size the trainer aims for (bytes + merges + added tokens).
DEFAULT_VOCAB_SIZE = 640

_DOMAIN_WORDS = """
bird birds flower flowers car cars aircraft airplane plane pet pets dog cat food dish species
genus family breed model variant make year label labels class classify image photo picture
sparrow warbler finch gull tern wren vireo oriole flycatcher hummingbird woodpecker kingfisher
cardinal blackbird jay crow raven albatross cormorant pelican grebe heron egret swallow
Black-footed Albatross, Laysan Albatross, Painted Bunting, Indigo Bunting, Red-winged Blackbird
American Goldfinch, Blue Jay, Northern Cardinal, Ruby-throated Hummingbird, Song Sparrow
rose tulip daisy sunflower orchid lily iris poppy lotus magnolia dandelion buttercup
pink primrose, hard-leaved pocket orchid, sweet pea, english marigold, tiger lily, moon orchid
Audi, BMW, Chevrolet, Ford, Honda, Toyota, Tesla, Hyundai, Volkswagen, Mercedes-Benz, Porsche
sedan coupe convertible hatchback minivan pickup truck SUV wagon 2012 2007 1993
Boeing 737-800, Airbus A320, Cessna 172, DC-9, MD-80, Embraer, Beechcraft, Dash 8
Abyssinian, Bengal, Persian, Siamese, beagle, boxer, pug, samoyed, shiba inu, yorkshire terrier
apple pie, baby back ribs, sushi, ramen, pizza, tacos, waffles, spaghetti carbonara
generic less specific more specific specific abstain wrong correct None unknown
"""

_PROMPT_TEXT = """
Classify the image. Classify the image, be specific.
First think it through step by step inside <think> </think> tags.
Then give your final answer inside <answer> </answer> tags.
<think> The image shows a small bird with a red crest and a short thick beak. </think>
<answer> Northern Cardinal </answer>
<think> It is a flower with pink petals; I am not sure of the species. </think>
<answer> flower </answer>
<answer>None</answer>
You are a helpful assistant. The answer must be one single label.
Answer with one word: wrong, abstain, generic, less specific, specific, more specific.
{"category": "specific"} 0 1 2 3 4 5 6 7 8 9 . , ; : ! ? ' " ( ) [ ] { } < > / \\ - _ + = * & % $ # @
"""


def _training_corpus() -> Iterator[str]:
    """Text the BPE merges are learnt from: domain words, prompts and answers, repeated."""
    lines = [line for line in (_DOMAIN_WORDS + _PROMPT_TEXT).splitlines() if line.strip()]
    for _ in range(4):
        yield from lines


def build_tiny_tokenizer(vocab_size: int = DEFAULT_VOCAB_SIZE) -> "PreTrainedTokenizerFast":
    """Train the tiny byte-level BPE tokenizer and wrap it for transformers (deterministic)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(QWEN25VL_ADDED_TOKENS):
        raise ValueError(
            f"vocab_size must be at least {256 + len(QWEN25VL_ADDED_TOKENS)} "
            f"(256 bytes + {len(QWEN25VL_ADDED_TOKENS)} added tokens), got {vocab_size}"
        )
    backend = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(QWEN25VL_ADDED_TOKENS),
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    backend.train_from_iterator(_training_corpus(), trainer=trainer)
    backend.add_tokens(
        [AddedToken(text, special=special, normalized=False) for text, special in QWEN25VL_ADDED_TOKENS]
    )

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=None,
        bos_token=None,
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
