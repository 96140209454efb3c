"""One downscaling rule for the whole package: data_prep's --max-pixels and the evaluation backends."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from verl_ext.data_prep.images import downscale, fit_within, inspect_image, shrink_image
from verl_ext.eval.backends.base import load_image
from verl_ext.testing.images import synthetic_jpeg


def test_evaluation_and_data_prep_shrink_an_image_identically():
    data = synthetic_jpeg(3, (400, 300))
    budget = 20_000
    evaluated = load_image(data, budget)
    prepared = Image.open(io.BytesIO(downscale(data, inspect_image(data, "x.jpg"), budget)))
    assert evaluated.size == prepared.size == fit_within(400, 300, budget)
    # Both are PIL's BICUBIC resize of the decoded image (the processor's own filter).
    reference = Image.open(io.BytesIO(data)).convert("RGB").resize(evaluated.size, Image.Resampling.BICUBIC)
    assert evaluated.tobytes() == reference.tobytes()


def test_an_image_within_the_budget_is_left_alone():
    image = Image.open(io.BytesIO(synthetic_jpeg(1, (40, 30)))).convert("RGB")
    assert shrink_image(image, 40 * 30) is image and shrink_image(image, None) is image
    data = synthetic_jpeg(1, (40, 30))
    assert downscale(data, inspect_image(data, "x.jpg"), 40 * 30) is None


@given(width=st.integers(1, 8000), height=st.integers(1, 8000), budget=st.integers(1, 4_000_000))
def test_fit_within_keeps_the_budget_and_never_enlarges(width, height, budget):
    new_width, new_height = fit_within(width, height, budget)
    assert 1 <= new_width <= width and 1 <= new_height <= height
    assert new_width * new_height <= budget
    if width * height <= budget:
        assert (new_width, new_height) == (width, height)
