from __future__ import annotations

import numpy as np

from bertwise.backbone.encoder import load_encoder
from bertwise.strategies import ProbeClassifier
from tests.conftest import toy_data


def test_probe_matches_logistic_regression_on_the_same_embeddings(tiny_bert: str) -> None:
    """Parity: the probe is exactly encoder features + LogisticRegression at the chosen C."""
    from sklearn.linear_model import LogisticRegression

    texts, labels = toy_data()
    probe = ProbeClassifier(model=tiny_bert, device="cpu", cv=3).fit(texts, labels)
    features = load_encoder(tiny_bert, "auto", "cpu").encode(texts)
    reference = LogisticRegression(C=probe.C_, max_iter=2000, random_state=0).fit(features, labels)
    np.testing.assert_allclose(probe.predict_proba(texts), reference.predict_proba(features), atol=1e-4)


def test_c_is_chosen_from_the_grid(tiny_bert: str) -> None:
    texts, labels = toy_data()
    probe = ProbeClassifier(model=tiny_bert, device="cpu", cv=3, Cs=(0.01, 100.0)).fit(texts, labels)
    assert probe.C_ in (0.01, 100.0)


def test_a_singleton_class_falls_back_to_the_grid_middle(tiny_bert: str) -> None:
    texts, labels = toy_data()
    probe = ProbeClassifier(model=tiny_bert, device="cpu", Cs=(1.0, 10.0, 100.0)).fit(
        [*texts, "a lone text"], [*labels, "other"]
    )
    assert probe.C_ == 10.0
    assert "other" in probe.classes_.tolist()
