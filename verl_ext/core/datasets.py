"""The paper's dataset groups, shared by the evaluation harness and the training curves.

Conti et al.'s grouping as the SpeciaRL paper uses it: the in-domain training set, the
fine-grained and the very fine-grained out-of-domain sets. Membership is taken from a summary
of the paper, not re-checked against its text; a group's figure is the unweighted mean over
its datasets present (inferred: it matches the paper's reported numbers better than pooling).
"""

from __future__ import annotations

from collections import OrderedDict

DATASET_GROUPS: "OrderedDict[str, tuple[str, ...]]" = OrderedDict(
    in_domain=("cub200",),
    fine_grained=("flowers102", "food101", "oxford_pets"),
    very_fine_grained=("fgvc_aircraft", "stanford_cars"),
)
GROUP_TITLES = {"in_domain": "In-domain (CUB)", "fine_grained": "Fine-grained", "very_fine_grained": "Very fine-grained"}
