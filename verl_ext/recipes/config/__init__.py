"""The recipes' Hydra configs (YAML only): ``speciarl.yaml`` and its variants in ``recipe/``.

A package, so that Hydra finds them as ``pkg://verl_ext.recipes.config`` wherever this
package is installed (see ``verl_ext/recipes/compose.py`` and docs/recipes.md).
"""
