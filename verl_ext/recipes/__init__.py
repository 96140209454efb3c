"""Helpers behind the shell recipes in ``recipes/``: dry run, GPU split and preflight checks.

Kept free of heavy imports at package level so that ``python -m verl_ext.recipes.<tool>``
starts in a fraction of a second from a shell script.
"""
