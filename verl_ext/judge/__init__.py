"""The LLM judge: grades a (ground truth, prediction) pair into one of the six categories."""
