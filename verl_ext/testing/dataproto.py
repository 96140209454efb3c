"""Build the ``DataProto`` that verl 0.9's streaming agent loop hands to a reward manager.

In training, ``AgentLoopWorker._compute_score`` (``verl/experimental/agent_loop/agent_loop.py``)
builds one small ``DataProto`` per finished trajectory and a reward worker passes it to
``run_single``. Its layout, mirrored here for a single-output trajectory:

- ``batch``: ``prompts``, ``responses``, ``input_ids`` (prompt + response) and an all-ones
  ``attention_mask``; int64, unpadded, batch size 1. (verl also sends mrope ``position_ids``;
  reward managers do not read them, so they are left out.)
- ``non_tensor_batch``: every dataset column (``data_source``, ``reward_model``,
  ``extra_info``, ``ability``, ``raw_prompt``, ``index``, ``tools_kwargs``,
  ``interaction_kwargs``), the V1 bookkeeping (``uid`` shared by a GRPO group, ``session_id``
  0..n-1 within it, ``global_steps``) and the agent-loop extras (``__num_turns__``,
  ``tool_extra_fields``, ``prompt_len``, ``response_len``). Each value is wrapped the way verl
  wraps it (``np.array([value])``).
"""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from PIL import Image
    from tensordict import TensorDict
    from transformers import PreTrainedTokenizerBase
    from verl import DataProto

#: What ``verl_ext.data_prep`` writes in the ``ability`` and ``reward_model.style`` columns.
DEFAULT_ABILITY = "fine_grained_classification"
DEFAULT_REWARD_STYLE = "model"

Messages = list[dict[str, Any]]


def _prompt_messages(prompt: Union[str, Messages], image: Optional["Image.Image"]) -> Messages:
    """The ``raw_prompt`` messages: a string becomes one user turn, image first (as verl builds it)."""
    if isinstance(prompt, str):
        if image is None:
            return [{"role": "user", "content": prompt}]
        return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]}]
    if image is not None:
        raise ValueError("image= only applies to a string prompt; put the image item in the messages instead")
    if not isinstance(prompt, list) or not all(isinstance(m, Mapping) and "role" in m for m in prompt):
        raise ValueError(f"prompt must be a string or a list of chat messages with a 'role', got {prompt!r}")
    return copy.deepcopy(prompt)


def _prompt_ids(tokenizer: "PreTrainedTokenizerBase", messages: Messages) -> list[int]:
    """Prompt ids as the agent loop makes them: the chat template with the generation prompt.

    Each image item becomes one ``<|image_pad|>`` here; the real agent loop expands it to the
    image's patch count. Reward managers only look at the response, so this does not matter there.
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer.encode(text, add_special_tokens=False))


def _response_ids(
    tokenizer: "PreTrainedTokenizerBase", response: Union[str, Sequence[int]], append_eos: bool
) -> list[int]:
    if isinstance(response, str):
        ids = list(tokenizer.encode(response, add_special_tokens=False))
        if append_eos:  # a finished rollout ends with the end-of-turn token
            ids.append(int(tokenizer.eos_token_id))
        return ids
    return [int(token) for token in response]


def make_reward_dataproto(
    tokenizer: "PreTrainedTokenizerBase",
    *,
    prompt: Union[str, Messages],
    response: Union[str, Sequence[int]],
    uid: str,
    session_id: int = 0,
    data_source: str,
    ground_truth: str,
    extra_info: Optional[Mapping[str, Any]] = None,
    global_steps: int = 0,
    index: int = 0,
    ability: str = DEFAULT_ABILITY,
    reward_style: str = DEFAULT_REWARD_STYLE,
    image: Optional["Image.Image"] = None,
    append_eos: bool = True,
    extra_columns: Optional[Mapping[str, Any]] = None,
) -> "DataProto":
    """One trajectory's reward input, as ``run_single`` receives it in verl 0.9 training.

    ``prompt`` is the user text (``image`` optionally placed before it) or full chat messages.
    ``response`` is the generated text, encoded and ended with ``<|im_end|>`` unless
    ``append_eos=False``, or the response token ids themselves. ``extra_columns`` adds more
    dataset columns to ``non_tensor_batch``.
    """
    import numpy as np
    import torch
    from verl import DataProto

    if not isinstance(uid, str) or not uid:
        raise ValueError(f"uid must be a non-empty string (verl uses a uuid4 per prompt), got {uid!r}")
    if not isinstance(session_id, int) or session_id < 0:
        raise ValueError(f"session_id must be a non-negative int, got {session_id!r}")

    messages = _prompt_messages(prompt, image)
    prompt_ids = torch.tensor(_prompt_ids(tokenizer, messages), dtype=torch.int64)
    response_ids = torch.tensor(_response_ids(tokenizer, response, append_eos), dtype=torch.int64)
    columns: dict[str, Any] = {
        "data_source": data_source,
        "reward_model": {"ground_truth": ground_truth, "style": reward_style},
        "extra_info": copy.deepcopy(dict(extra_info or {})),
        "ability": ability,
        "raw_prompt": messages,
        "index": index,
        "tools_kwargs": {},
        "interaction_kwargs": {},
        **dict(extra_columns or {}),
        "uid": uid,
        "global_steps": global_steps,
        "session_id": session_id,
    }
    non_tensor_batch = {name: _like_agent_loop(value) for name, value in columns.items()}
    non_tensor_batch.update(
        {
            "__num_turns__": np.array([2]),  # one user turn + one assistant turn
            "tool_extra_fields": np.array([{}], dtype=object),
            "prompt_len": np.array([len(prompt_ids)]),
            "response_len": np.array([len(response_ids)]),
        }
    )
    return DataProto(batch=_tensor_batch(prompt_ids, response_ids), non_tensor_batch=non_tensor_batch)


def _tensor_batch(prompt_ids: "torch.Tensor", response_ids: "torch.Tensor") -> "TensorDict":
    """The unpadded tensors of one trajectory, batch size 1, as the agent loop sends them."""
    import torch
    from tensordict import TensorDict

    input_ids = torch.cat([prompt_ids, response_ids])
    return TensorDict(
        {
            "prompts": prompt_ids.unsqueeze(0),
            "responses": response_ids.unsqueeze(0),
            "attention_mask": torch.ones_like(input_ids).unsqueeze(0),
            "input_ids": input_ids.unsqueeze(0),
        },
        batch_size=1,
    )


def _like_agent_loop(value: Any) -> Any:
    """Wrap one column value exactly as ``_compute_score`` does: ``np.array([value] * n)``, n = 1.

    So strings arrive as ``numpy.str_``, dicts as objects, and a message list (``raw_prompt``)
    as a ``(1, n_messages)`` object array whose row is an array of message dicts.
    """
    import numpy as np

    return np.array([value])


def make_group_dataprotos(
    tokenizer: "PreTrainedTokenizerBase",
    *,
    prompt: Union[str, Messages],
    responses: Sequence[Union[str, Sequence[int]]],
    data_source: str,
    ground_truth: str,
    uid: Optional[str] = None,
    **kwargs: Any,
) -> list["DataProto"]:
    """One ``DataProto`` per response of a GRPO group: shared ``uid``, ``session_id`` 0..n-1.

    ``uid`` defaults to a fresh uuid4 string, as verl assigns one per prompt. Each member gets
    its own copy of ``extra_info``, as after Ray serialisation in verl.
    """
    if isinstance(responses, str) or not responses:
        raise ValueError("responses must be a non-empty sequence of responses (one per group member)")
    group_uid = uid if uid is not None else str(uuid.uuid4())
    return [
        make_reward_dataproto(
            tokenizer,
            prompt=prompt,
            response=response,
            uid=group_uid,
            session_id=session_id,
            data_source=data_source,
            ground_truth=ground_truth,
            **kwargs,
        )
        for session_id, response in enumerate(responses)
    ]
