"""Whether a dataset row is trained on or only evaluated: one rule for the dataset class and the reward.

The reward's group size depends on it (``rollout.n`` for training rows, ``rollout.val_kwargs.n``
for validation rows) and verl does not tell a reward manager which it is scoring. Our dataset
class tags every row with ``extra_info[ROLE_KEY]``; without it, a row's ``extra_info.split``
decides: the official training splits ``data_prep`` writes are ``train`` (CUB, Flowers102,
Food-101, FGVC-Aircraft, Stanford Cars) and ``trainval`` (Oxford Pets and FGVC-Aircraft's
train+val); every other split (``val``, ``test``) is only evaluated.

>>> row_role({"split": "trainval"}), row_role({"split": "test"}), row_role({"speciarl_role": "val", "split": "train"})
('train', 'val', 'val')
>>> row_role({}) is None
True
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

#: The ``extra_info`` key our dataset class tags every row with.
ROLE_KEY = "speciarl_role"
TRAIN, VAL = "train", "val"
ROLES = (TRAIN, VAL)
#: Official splits that are trained on.
TRAINING_SPLITS = frozenset({"train", "trainval"})


def role_of_split(split: str) -> str:
    """``"train"`` for a training split, ``"val"`` for any other."""
    return TRAIN if split in TRAINING_SPLITS else VAL


def row_role(extra_info: Mapping[str, Any]) -> Optional[str]:
    """The row's role from its tag, else from its split; ``None`` if it says neither."""
    tagged = extra_info.get(ROLE_KEY)
    if tagged in ROLES:
        return tagged
    split = extra_info.get("split")
    if isinstance(split, str) and split:
        return role_of_split(split)
    return None
