"""The SpeciaRL trainer mode for verl 0.9's V1 trainer (``trainer.v1.trainer_mode=speciarl``)."""
