"""SpeciaRL on verl: specificity-aware RL for open-world fine-grained image classification.

Layers (see docs/architecture.md):

* ``verl_ext.core``     pure core: categories, answer parsing, reward rules, metrics;
* ``verl_ext.judge``    I/O: the LLM-judge client, its cache and CLI;
* ``verl_ext.data_prep`` I/O: dataset readers and parquet writers;
* ``verl_ext.reward``, ``verl_ext.data``, ``verl_ext.eval``: glue to verl and CLIs;
* ``verl_ext.testing``  offline fixtures for tests of this package and of user recipes.
"""

__version__ = "0.1.0"
