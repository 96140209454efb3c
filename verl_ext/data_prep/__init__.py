"""Shared machinery for turning the official fine-grained dataset layouts into verl parquet.

Each ``data_prep/<name>.py`` script declares only what is specific to its dataset (where the
files are, how ids, labels and splits are read) as a :class:`~verl_ext.data_prep.spec.DatasetSpec`
and calls :func:`~verl_ext.data_prep.cli.main`. Everything else lives here:

- :mod:`.archive`  safe extraction (no path traversal, no links pointing outside);
- :mod:`.download` resumable download with checksum verification;
- :mod:`.layout`   image records, annotation-file readers and validation helpers;
- :mod:`.coop`     reading CoOp ``split_zhou_*.json`` split files;
- :mod:`.images`   cheap integrity check and optional ``--max-pixels`` downscaling;
- :mod:`.subset`   the deterministic ``--subset N --seed S`` selection;
- :mod:`.writer`   the streaming parquet writer (small row groups, original image bytes);
- :mod:`.convert`  one split from records to parquet, with progress bar and bad-image policy;
- :mod:`.cli`      the shared command line and the end summary.
"""
