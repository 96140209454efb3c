"""Reading one trajectory out of the DataProto that verl's reward loop hands to ``run_single``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


class RolloutFieldError(ValueError):
    """A field the SpeciaRL reward needs is missing from the trajectory."""


@dataclass(frozen=True)
class Rollout:
    """The fields of one trajectory that the reward uses."""

    uid: str
    session_id: int
    data_source: str
    ground_truth: str
    extra_info: Mapping[str, Any]
    global_step: int
    response_ids: Any  # 1-D tensor of the valid response tokens

    @property
    def response_length(self) -> int:
        return int(self.response_ids.shape[-1])


def _field(non_tensor: Mapping[str, Any], name: str) -> Any:
    if name not in non_tensor or non_tensor[name] is None:
        raise RolloutFieldError(
            f"trajectory has no {name!r} field; the SpeciaRL reward needs verl's GRPO group id "
            "('uid') and session index ('session_id', which verl 0.9's V1 trainer sends with every "
            "rollout; the legacy trainer, trainer.use_v1=False, does not), 'data_source' and "
            "'reward_model.ground_truth' on every rollout"
        )
    return non_tensor[name]


def read_rollout(data: Any) -> Rollout:
    """The last output of a trajectory, as verl's built-in managers read it.

    verl 0.9's agent loop sends one row per output, unpadded; the valid response tokens are the
    ``attention_mask`` over the last ``len(responses)`` positions (``naive.py`` in
    ``verl/experimental/reward_loop/reward_manager`` does the same).
    """
    item = data[-1]
    responses = item.batch["responses"]
    length = responses.shape[-1]
    valid = int(item.batch["attention_mask"][-length:].sum())
    non_tensor = item.non_tensor_batch
    reward_model = _field(non_tensor, "reward_model")
    if not isinstance(reward_model, Mapping) or reward_model.get("ground_truth") in (None, ""):
        raise RolloutFieldError("trajectory's 'reward_model' has no 'ground_truth'")
    extra_info = non_tensor.get("extra_info")
    return Rollout(
        uid=str(_field(non_tensor, "uid")),
        session_id=int(_field(non_tensor, "session_id")),
        data_source=str(_field(non_tensor, "data_source")),
        ground_truth=str(reward_model["ground_truth"]),
        extra_info=extra_info if isinstance(extra_info, Mapping) else {},
        global_step=int(non_tensor.get("global_steps", 0) or 0),
        response_ids=responses[:valid],
    )


