"""What is behind the shell recipes in ``recipes/``: their Hydra configs (``config/``), the
composition ``main_ppo`` does (``compose``), the older environment variables (``environment``),
the shell's bridge (``recipe_args``), the dry run, the GPU split and the preflight checks.

Kept free of heavy imports at package level so that ``python -m verl_ext.recipes.<tool>``
starts in a fraction of a second from a shell script.
"""
