"""Shared machinery for turning the official fine-grained dataset layouts into verl parquet.

Each ``data_prep/<name>.py`` script declares only what is specific to its dataset (where the
files are, how ids, labels and splits are read) as a :class:`~verl_ext.data_prep.spec.DatasetSpec`
and calls :func:`~verl_ext.data_prep.cli.main`. Everything else lives here:

- :mod:`.archive`  safe extraction (tarfile's ``data`` filter; our checks for zip);
- :mod:`.download` resumable, checksum-verified download (httpx) and the file-digest helper;
- :mod:`.locate`   finding the dataset under ``--root``: extracted, from archives, or downloaded;
- :mod:`.layout`   image records, their image source, annotation-file readers and validation;
- :mod:`.hf_parquet` Hugging Face parquet snapshots (Stanford Cars) and the hub download;
- :mod:`.coop`     reading CoOp ``split_zhou_*.json`` split files, per dataset numbering;
- :mod:`.images`   cheap integrity check and the package's one downscaling rule;
- :mod:`.subset`   the deterministic ``--subset N --seed S`` selection;
- :mod:`.writer`   the streaming parquet writer (small row groups, original image bytes);
- :mod:`.convert`  one split from records to parquet, with progress bar and bad-image policy;
- :mod:`.cli`      the shared command line and the end summary.
"""
