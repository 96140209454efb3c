"""One rule for prompt settings (``core.prompts.resolve_prompt_text``), used alike by the dataset,
the evaluation CLI and the recipes' dry run; and the package's layering rules."""

import ast
import doctest
from pathlib import Path

import pytest

import verl_ext.core.prompts as prompts
from verl_ext.core.prompts import PROMPT_VARIANTS, PromptVariantError, resolve_prompt_text
from verl_ext.data.prompt_file import read_prompt_file

PACKAGE = Path(prompts.__file__).resolve().parents[1]


def test_variant_names_select_the_variant_text():
    assert resolve_prompt_text("general") == PROMPT_VARIANTS["general"]
    assert resolve_prompt_text("specific").startswith("Classify the image, be specific.")


@pytest.mark.parametrize("typo", ["specfic", "Specific", "genral", "max-specificity"])
def test_a_single_unknown_word_is_a_misspelt_name_not_a_prompt(typo):
    with pytest.raises(PromptVariantError, match=f"unknown prompt variant {typo!r}"):
        resolve_prompt_text(typo)


def test_a_sentence_is_custom_text_but_not_with_an_image_placeholder():
    assert resolve_prompt_text("What bird is this?") == "What bird is this?"
    with pytest.raises(PromptVariantError, match="<image>"):
        resolve_prompt_text("Look at <image> now.")
    with pytest.raises(PromptVariantError, match="prompt variant must be one of"):
        resolve_prompt_text("   ")


def test_a_prompt_file_is_read_stripped_and_never_taken_as_a_variant_name(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("specific\n", encoding="utf-8")  # one word, but from a file: the user's own text
    assert resolve_prompt_text(f"file://{path}", read_file=read_prompt_file) == "specific"
    with pytest.raises(PromptVariantError, match="cannot read prompt file"):
        resolve_prompt_text(f"file://{tmp_path / 'missing.txt'}", read_file=read_prompt_file)
    path.write_text("  \n", encoding="utf-8")
    with pytest.raises(PromptVariantError, match="is empty"):
        resolve_prompt_text(f"file://{path}", read_file=read_prompt_file)


def test_the_pure_core_reads_no_file_by_itself(tmp_path):
    with pytest.raises(PromptVariantError, match="not accepted here"):
        resolve_prompt_text(f"file://{tmp_path / 'p.txt'}")


SPECS = ["general", "specific", "specfic", "Name the bird species.", "Look at <image>.", "file://{missing}",
         "file://{good}"]


def _outcome(call, spec):
    from verl_ext.recipes.errors import RecipeError

    try:
        call(spec)
    except (ValueError, RecipeError):  # each caller wraps the core's error in its own type
        return "rejected"
    return "accepted"


def test_dataset_eval_cli_and_dry_run_accept_and_reject_the_same_settings(tmp_path):
    from verl_ext.data.dataset import FineGrainedDataSettings
    from verl_ext.eval.pipeline import EvalConfig
    from verl_ext.recipes.eval_dry_run import check_eval_arguments

    good = tmp_path / "good.txt"
    good.write_text("Name the flower.", encoding="utf-8")
    callers = {
        "dataset": lambda spec: FineGrainedDataSettings(prompt_variant=spec),
        "eval": lambda spec: EvalConfig(model="m", data=["d"], out=tmp_path, judge={}, prompt_variant=spec),
        "dry_run": lambda spec: check_eval_arguments(["--model", "m", "--data", "d", "--out", "o",
                                                      "--prompt-variant", spec]),
    }
    for template in SPECS:
        spec = template.format(missing=tmp_path / "missing.txt", good=good)
        verdicts = {name: _outcome(call, spec) for name, call in callers.items()}
        assert len(set(verdicts.values())) == 1, (spec, verdicts)
        expected = "accepted" if template in ("general", "specific", "Name the bird species.", "file://{good}") \
            else "rejected"
        assert verdicts["eval"] == expected, spec


def test_core_docstring_examples_hold():
    import verl_ext.core as core

    for path in sorted(Path(core.__file__).parent.glob("*.py")):
        module = __import__(f"verl_ext.core.{path.stem}", fromlist=["_"]) if path.stem != "__init__" else core
        failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failures == 0, path.name


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_production_code_never_imports_the_test_kit_and_the_core_imports_only_itself():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "testing":
            continue
        for name in _imports(path):
            if name.startswith("verl_ext.testing"):
                offenders.append(f"{relative} imports {name}")
            if relative.parts[0] == "core" and (name.startswith("verl") and not name.startswith("verl_ext.core")):
                offenders.append(f"{relative} (pure core) imports {name}")
    assert not offenders


def test_the_dry_run_rejects_an_unknown_metric():
    from verl_ext.recipes.errors import RecipeError
    from verl_ext.recipes.eval_dry_run import check_eval_arguments

    base = ["--model", "m", "--data", "d", "--out", "o"]
    assert check_eval_arguments(base + ["--metrics", "judge,owc"])["metrics"] == "judge,owc"
    with pytest.raises(RecipeError, match="unknown metric 'owk'"):
        check_eval_arguments(base + ["--metrics", "judge,owk"])
