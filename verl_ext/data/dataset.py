"""``FineGrainedImageDataset``: verl's ``RLHFDataset`` plus what open-world classification needs.

Selected with ``data.custom_cls.path=pkg://verl_ext.data.dataset
data.custom_cls.name=FineGrainedImageDataset``; settings under ``data.speciarl``:

- ``prompt_variant``: ``general`` (default), ``specific``, another name of
  :data:`verl_ext.core.prompts.PROMPT_VARIANTS`, the user's own text (no ``<image>``), or
  ``file://path`` to a text file. Every row's prompt is rebuilt from it: one user message,
  the image first, then the text.
- ``on_bad_image``: ``error`` (default) or ``skip``. verl's overlong-prompt filter catches any
  exception and silently drops the row (``RLHFDataset``'s ``filter_overlong_prompts`` in
  ``verl/utils/dataset/rl_dataset.py``), so a broken image pipeline
  trains on a shrunken or empty dataset. Here every row is checked once at start-up through
  the same calls the rollout makes (placeholder expansion, ``process_multi_modal_info``, the
  processor); a failure either stops start-up naming the row and its source file, or is
  skipped and counted (``skipped_bad_images``, logged and printed).

Every row is tagged ``extra_info["speciarl_role"]`` = ``"train"`` or ``"val"`` (see
:func:`infer_role`), which the reward manager uses to pick the group size. A dataset that
ends up empty fails at start-up with the reason.
"""

from __future__ import annotations

import copy
import logging
import os
import uuid
from typing import Any, Literal, Mapping, Sequence

from omegaconf import DictConfig, ListConfig
from pydantic import Field, PrivateAttr, model_validator
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.tokenizer import build_multimodal_processor_inputs

from verl_ext.core.prompts import PROMPT_VARIANTS, PromptVariantError, prompt_messages, resolve_prompt_text
from verl_ext.core.roles import ROLE_KEY, TRAIN, VAL
from verl_ext.data.prompt_file import read_prompt_file
from verl_ext.settings import Settings, SettingsError, load_settings

logger = logging.getLogger(__name__)

ON_BAD_IMAGE_CHOICES = ("error", "skip")
_PROBLEM = "_speciarl_problem"
_LENGTH = "_speciarl_prompt_length"
_WHERE = "_speciarl_source"


class DatasetSettingsError(SettingsError):
    """A ``data.speciarl.*`` value that cannot be used; the message names the key."""


class BadImageRowError(ValueError):
    """A row whose image (or prompt) cannot be processed, with ``on_bad_image=error``."""


class EmptyDatasetError(ValueError):
    """The dataset has no rows left at start-up."""


class FineGrainedDataSettings(Settings):
    """The validated ``data.speciarl`` node (see ``verl_ext.settings``)."""

    error = DatasetSettingsError

    prompt_variant: str = Field("general", strict=True)
    on_bad_image: Literal[ON_BAD_IMAGE_CHOICES] = "error"  # type: ignore[valid-type]
    _prompt_text: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _resolve_prompt(self) -> "FineGrainedDataSettings":
        self._prompt_text = _prompt_text(self.prompt_variant)
        return self

    @property
    def prompt_text(self) -> str:
        """The prompt every row gets, resolved (and checked) from ``prompt_variant`` at start-up."""
        return self._prompt_text

    @classmethod
    def from_data_config(cls, data_config: Any) -> "FineGrainedDataSettings":
        node = data_config.get("speciarl", None) if data_config is not None else None
        return load_settings(cls, node, "data.speciarl")


def _prompt_text(value: Any) -> str:
    key = "data.speciarl.prompt_variant"
    if not isinstance(value, str):
        raise DatasetSettingsError(f"{key} must be a string, got {value!r}")
    try:
        return resolve_prompt_text(value, read_file=read_prompt_file)
    except PromptVariantError as error:
        raise DatasetSettingsError(f"{key}: {error}") from error


def _file_set(files: Any) -> tuple[str, ...]:
    if files is None:
        return ()
    if isinstance(files, (ListConfig, list, tuple)):
        items = list(files)
    else:
        items = [files]
    normalised = []
    for item in items:
        text = str(item)
        normalised.append(text if "://" in text else os.path.abspath(os.path.expanduser(text)))
    return tuple(sorted(normalised))


def infer_role(data_files: Any, data_config: Any) -> str:
    """``"train"`` or ``"val"``: which of ``data.train_files`` / ``data.val_files`` built this dataset.

    verl passes ``data.train_files`` or ``data.val_files`` unchanged as ``data_files``; the sets
    of paths (absolute, ``~`` expanded; URLs as written) are compared. Equal to exactly one of
    them: that role. Equal to both: ambiguous, an error (make a separate validation file, e.g.
    ``--splits test --subset 500``). Equal to neither (built directly, e.g. by an evaluation
    script): ``"val"``, since those rows are not trained on.
    """
    mine = _file_set(data_files)
    train = _file_set(data_config.get("train_files", None)) if data_config is not None else ()
    val = _file_set(data_config.get("val_files", None)) if data_config is not None else ()
    is_train, is_val = mine == train and bool(mine), mine == val and bool(mine)
    if is_train and is_val:
        raise DatasetSettingsError(
            "data.train_files and data.val_files name the same files, so training and validation rows "
            "cannot be told apart (the reward manager needs that for the group size); build a separate "
            "validation file, e.g. `python data_prep/cub.py ... --splits test --subset 500 --seed 42`"
        )
    if is_train:
        return TRAIN
    if not is_val:
        logger.info("dataset files %s are neither data.train_files nor data.val_files: tagging rows 'val'", mine)
    return VAL


class FineGrainedImageDataset(RLHFDataset):
    """verl's ``RLHFDataset`` with prompt variants, role tags and loud or counted bad images."""

    def __init__(
        self,
        data_files: str | Sequence[str],
        tokenizer,
        config: DictConfig,
        processor=None,
        max_samples: int = -1,
    ):
        self.speciarl = FineGrainedDataSettings.from_data_config(config)
        self.role = infer_role(data_files, config)
        self.skipped_bad_images: list[dict] = []
        self.overlong_dropped = 0
        super().__init__(data_files, tokenizer, config, processor=processor, max_samples=max_samples)
        if len(self.dataframe) == 0:
            first = self.skipped_bad_images[0] if self.skipped_bad_images else None
            reason = (
                f"all {len(self.skipped_bad_images)} rows had bad images (first: row {first['row']}, "
                f"{first['source']}: {first['error']})"
                if first
                else f"{self.overlong_dropped} rows were longer than data.max_prompt_length={self.max_prompt_length}"
                if self.overlong_dropped
                else "the files hold no rows"
            )
            raise EmptyDatasetError(f"{type(self).__name__} ({self.role}) from {list(self.original_data_files)} is empty: {reason}")
        self._report()

    @property
    def num_skipped_bad_images(self) -> int:
        return len(self.skipped_bad_images)

    def _report(self) -> None:
        message = (
            f"[speciarl] {type(self).__name__} ({self.role}): {len(self.dataframe)} rows; prompt variant "
            f"{self.speciarl.prompt_variant if self.speciarl.prompt_variant in PROMPT_VARIANTS else 'custom'}; "
            f"{self.num_skipped_bad_images} rows skipped for bad images; {self.overlong_dropped} overlong prompts dropped"
        )
        print(message)
        if self.skipped_bad_images:
            logger.warning(message)

    # ---- prompt -------------------------------------------------------------------------------
    def _build_messages(self, example: dict, key: str):
        images = example.get(self.image_key, None) or []
        if len(images) != 1:
            raise BadImageRowError(f"expected exactly one image per row, found {len(images)}")
        example[key] = prompt_messages(self.speciarl.prompt_text)
        return super()._build_messages(example, key)

    # ---- start-up check (replaces the silent drop) --------------------------------------------
    def _check_row(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Run the rollout's image path on one row; never raises (errors are returned)."""
        length = -1
        try:
            example = copy.deepcopy(dict(doc))
            messages = self._build_messages(example, key=self.prompt_key)
            images, videos, audios = self._process_multi_modal_info(messages, self.image_patch_size, self.config)
            if self.filter_overlong_prompts:
                apply_kwargs = dict(self.apply_chat_template_kwargs)
                if self.tool_schemas is not None:
                    apply_kwargs["tools"] = self.tool_schemas
                text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **apply_kwargs)
                inputs = build_multimodal_processor_inputs(
                    self.processor, text=[text], images=images, videos=videos, audio=audios,
                    mm_processor_kwargs=self.mm_processor_kwargs,
                )
                length = len(inputs["input_ids"][0])
            return {_PROBLEM: "", _LENGTH: length, _WHERE: ""}
        except Exception as error:  # every failure is reported, never swallowed
            extra = doc.get("extra_info") or {}
            images = doc.get(self.image_key) or []
            source = extra.get("source_file") or (images[0].get("path") if images and isinstance(images[0], dict) else None)
            where = f"{source or 'unknown file'} (extra_info.index={extra.get('index')})"
            return {_PROBLEM: f"{type(error).__name__}: {error}", _LENGTH: length, _WHERE: where}

    def maybe_filter_out_long_prompts(self, dataframe=None):
        self.skipped_bad_images = []
        self.overlong_dropped = 0
        workers = self.num_workers if self.num_workers and self.num_workers > 1 else None
        checked = dataframe.map(
            self._check_row,
            remove_columns=dataframe.column_names,
            num_proc=workers,
            load_from_cache_file=False,
            new_fingerprint=uuid.uuid4().hex,
            desc="[speciarl] checking images" + (" and prompt lengths" if self.filter_overlong_prompts else ""),
        )
        problems, lengths, sources = checked[_PROBLEM], checked[_LENGTH], checked[_WHERE]
        keep = []
        for row, (problem, length, source) in enumerate(zip(problems, lengths, sources)):
            if problem:
                if self.speciarl.on_bad_image == "error":
                    raise BadImageRowError(
                        f"row {row} of {list(self.original_data_files)}, {source}: {problem} "
                        "(fix or remove the row, or set +data.speciarl.on_bad_image=skip to skip and count such rows)"
                    )
                self.skipped_bad_images.append({"row": row, "source": source, "error": problem})
                continue
            if self.filter_overlong_prompts and length > self.max_prompt_length:
                self.overlong_dropped += 1
                continue
            keep.append(row)
        if self.skipped_bad_images:
            logger.warning(
                "[speciarl] skipped %d rows with bad images (data.speciarl.on_bad_image=skip); first: %s",
                len(self.skipped_bad_images), self.skipped_bad_images[0],
            )
        if self.overlong_dropped:
            logger.warning(
                "[speciarl] dropped %d rows longer than data.max_prompt_length=%d",
                self.overlong_dropped, self.max_prompt_length,
            )
        return dataframe if len(keep) == len(dataframe) else dataframe.select(keep)

    # ---- rows ---------------------------------------------------------------------------------
    def __getitem__(self, item):
        row = super().__getitem__(item)
        extra = dict(row.get("extra_info") or {})
        extra[ROLE_KEY] = self.role
        row["extra_info"] = extra
        return row
