"""Evaluation harness: predict -> judge -> score, each stage cached on disk and resumable.

``python -m verl_ext.eval --model M --data P ... --judge-url URL --out DIR`` evaluates a
policy on parquet files in the data-prep schema and writes ``metrics.json``, a Markdown
report and plots. See ``docs/evaluation.md``.
"""
