"""The judge prompt, request bodies, reply validation and short-circuits (pure functions)."""

from __future__ import annotations

import json

import pytest

from verl_ext.core.categories import CATEGORY_LABELS, Category
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.prompt import (
    PROMPT_VERSION,
    build_messages,
    parse_pair_from_user_message,
    system_prompt,
    user_message,
)
from verl_ext.judge.protocol import parse_reply, reply_text, request_body
from verl_ext.judge.shortcuts import short_circuit

URL = ("http://127.0.0.1:9/v1",)


def test_rubric_names_every_category_and_asks_for_the_label_only():
    rubric = system_prompt()
    for label in CATEGORY_LABELS:
        assert f"\n{label} - " in "\n" + rubric, label
    assert "label only" in rubric
    assert PROMPT_VERSION


@pytest.mark.parametrize(
    "gt,pred", [("golden-winged warbler", "warbler"), ('say "hi"', "a\\b"), ("épée", "日本 語"), ("", "")]
)
def test_user_message_carries_the_pair_as_one_json_line(gt, pred):
    message = user_message(gt, pred)
    json_lines = [line for line in message.splitlines() if line.startswith("{")]
    assert len(json_lines) == 1
    assert json.loads(json_lines[0]) == {"ground_truth": gt, "prediction": pred}
    assert parse_pair_from_user_message(message) == (gt, pred)
    system, user = build_messages(gt, pred)
    assert (system["role"], user["role"]) == ("system", "user")


def test_parse_pair_rejects_text_without_a_pair():
    assert parse_pair_from_user_message("classify this") is None
    assert parse_pair_from_user_message('{"ground_truth": "a"}') is None
    assert parse_pair_from_user_message("{not json}") is None


@pytest.mark.parametrize("constraint", ["choice", "json_schema", "text"])
def test_request_body_is_deterministic_and_constrained(constraint):
    body = request_body(JudgeConfig(urls=URL, constraint=constraint), "qwen", "dog", "samoyed")
    assert body["temperature"] == 0
    assert body["model"] == "qwen"
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["max_tokens"] == 32
    assert ("structured_outputs" in body) == (constraint == "choice")
    assert ("response_format" in body) == (constraint == "json_schema")
    if constraint == "choice":
        assert sorted(body["structured_outputs"]["choice"]) == sorted(CATEGORY_LABELS)
    if constraint == "json_schema":
        schema = body["response_format"]["json_schema"]["schema"]
        assert sorted(schema["properties"]["category"]["enum"]) == sorted(CATEGORY_LABELS)


def test_chat_template_kwargs_can_be_left_out_for_hosted_apis():
    body = request_body(JudgeConfig(urls=URL, send_chat_template_kwargs=False), "m", "a", "b")
    assert "chat_template_kwargs" not in body
    thinking = request_body(JudgeConfig(urls=URL, enable_thinking=True), "m", "a", "b")
    assert thinking["chat_template_kwargs"] == {"enable_thinking": True}
    assert thinking["max_tokens"] == 2048


@pytest.mark.parametrize(
    "text,expected",
    [
        ("specific", Category.SPECIFIC),
        ("  Less Specific.\n", Category.LESS_SPECIFIC),
        ('"more specific"', Category.MORE_SPECIFIC),
        ('{"category": "generic"}', Category.GENERIC),
        ('{\n  "category": "abstain"\n}', Category.ABSTAIN),
        ('```json\n{"category": "wrong"}\n```', Category.WRONG),
        ("<think>\nhmm, specific?\n</think>\n\nwrong", Category.WRONG),
        ("", None),
        ("very specific", None),
        ('{"category": "kind of"}', None),
        ('{"label": "specific"}', None),
        ('{"category": 3}', None),
        ("{broken json", None),
        ("The answer is: less specific", None),
        (None, None),
    ],
)
def test_strict_reply_parsing(text, expected):
    assert parse_reply(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("The answer is: less specific", Category.LESS_SPECIFIC),
        ("Category - more_specific, because it names a subtype", Category.MORE_SPECIFIC),
        ("specific or less specific", None),
        ("I am not sure", None),
    ],
)
def test_tolerant_reply_parsing_accepts_exactly_one_mentioned_label(text, expected):
    assert parse_reply(text, tolerant=True) == expected


def test_reply_text_reads_only_well_formed_completions():
    ok = {"choices": [{"message": {"role": "assistant", "content": "wrong"}}]}
    assert reply_text(ok) == "wrong"
    for bad in (None, [], {}, {"choices": []}, {"choices": [{"message": {"content": None}}]}, {"choices": ["x"]}):
        assert reply_text(bad) is None


@pytest.mark.parametrize(
    "gt,pred,expected",
    [
        ("lion", "lion", Category.SPECIFIC),
        ("lion", "", Category.ABSTAIN),
        ("lion", "none", Category.ABSTAIN),
        ("lion", "i don t know", Category.ABSTAIN),
        ("lion", "cannot tell", Category.ABSTAIN),
        ("lion", "unknown", Category.ABSTAIN),
        ("none", "none", Category.ABSTAIN),
        ("lion", "panthera leo", None),
        ("lion", "lions", None),
    ],
)
def test_short_circuits(gt, pred, expected):
    assert short_circuit(gt, pred) == expected
