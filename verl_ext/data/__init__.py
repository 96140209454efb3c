"""verl dataset glue: :class:`verl_ext.data.dataset.FineGrainedImageDataset` for ``data.custom_cls``.

Import the class from ``verl_ext.data.dataset`` (this package stays import-light).
"""
