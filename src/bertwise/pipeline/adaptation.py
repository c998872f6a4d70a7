"""The domain-adaptation stage of ``compare --adapt-domain``: adapt the first backbone to the training texts, so that
the comparison runs every strategy on it and on its adapted copy, and the paired differences say whether it helped.

The adapted backbone is made by :func:`bertwise.backbone.adapt.adapt_backbone` (cached by fingerprint, so curves,
seeds and reruns reuse it); only training texts and the user's unlabeled texts are read, never a separate test set's.
Under cross-validation every row is some fold's test row, so the adaptation reads texts it is later tested on
(their labels never): the record says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bertwise.config import CompareConfig
from bertwise.data.split import DataSource
from bertwise.pipeline.stages import read_split
from bertwise.strategies.variants import labels_for


def adapted_backbone(
    config: CompareConfig, data: DataSource, test: DataSource | None, unlabeled: Sequence[str]
) -> tuple[str, str, dict[str, Any]]:
    """(the adapted backbone's path, its label in the pairs, results.json's ``model.domain_adaptation`` record)."""
    from bertwise.backbone.adapt import adapt_backbone

    split = read_split(config, data, test)
    adapted = adapt_backbone(
        config.model, split.train.texts, unlabeled=unlabeled, seed=config.seed, device=config.device
    )
    record = {key: value for key, value in asdict(adapted).items() if key != "settings"}
    record["settings"] = dict(adapted.settings)
    record["unlabeled_texts"] = len(unlabeled)
    if split.test_origin == "cross-validation":
        record["note"] = (
            "cross-validation tests every row, so the adaptation read the texts (never the labels) of rows it is "
            "later tested on"
        )
    label = f"{labels_for([config.model])[0]}+domain"
    return adapted.path, label, record
