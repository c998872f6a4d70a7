"""A strategy defined and registered only here (TF-IDF + logistic regression) goes through bertwise end to end.

It proves the strategy contract (strategies/base.py): a new strategy is one class plus ``registry.register``; no module
of the package names it, yet it goes through compare (results.json, the report, save-best), train, load, predict_file
and the serve app.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pytest

from bertwise.data.dataset import Label
from bertwise.exceptions import ModelError
from bertwise.strategies import registry
from bertwise.strategies.base import SavedFiles, Strategy, StrategyTags
from bertwise.strategies.state import classes_array, configured, recorded_attributes, require_section

if TYPE_CHECKING:
    from bertwise.config import CompareConfig

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "banking77_sample"
VOCABULARY_FILE = "vocabulary.json"
WEIGHTS_FILE = "weights.safetensors"


class TfidfClassifier(Strategy):
    """Word and bigram TF-IDF features, then a logistic regression: the classic baseline, no backbone at all."""

    tags: ClassVar[StrategyTags] = StrategyTags(
        name="tfidf", trains_backbone=False, uses_labels_for_training=True, seed_dependent=False
    )

    def __init__(self, *, C: float = 10.0, max_features: int = 20000, seed: int = 0, progress: bool = False) -> None:  # noqa: N803
        self.C = C
        self.max_features = max_features
        self.seed = seed
        self.progress = progress

    @classmethod
    def from_config(cls, config: CompareConfig, *, progress: bool = False) -> TfidfClassifier:
        return cls(seed=config.seed, progress=progress)

    def fit_details(self) -> dict[str, Any]:
        return recorded_attributes(self, {"n_features_": "features"})

    def save_state(self, folder: Path) -> dict[str, Any]:
        from safetensors.numpy import save_file

        vocabulary = {term: int(index) for term, index in self.vectorizer_.vocabulary_.items()}
        (folder / VOCABULARY_FILE).write_text(json.dumps(vocabulary, sort_keys=True), encoding="utf-8")
        arrays = {
            "idf": np.ascontiguousarray(self.vectorizer_.idf_),
            "coef": np.ascontiguousarray(self.head_.coef_),
            "intercept": np.ascontiguousarray(self.head_.intercept_),
            "classes": np.ascontiguousarray(self.head_.classes_, dtype=np.int64),
        }
        save_file(arrays, str(folder / WEIGHTS_FILE))
        return {"tfidf": {"vocabulary_file": VOCABULARY_FILE, "weights_file": WEIGHTS_FILE}}

    @classmethod
    def from_state(cls, folder: Path, manifest: Mapping[str, Any], *, device: str, precision: str) -> TfidfClassifier:
        from safetensors.numpy import load_file
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        estimator = configured(cls(), manifest, progress=False)
        vocabulary = json.loads((folder / VOCABULARY_FILE).read_text(encoding="utf-8"))
        arrays = load_file(str(folder / WEIGHTS_FILE))
        estimator.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, vocabulary=vocabulary)
        estimator.vectorizer_.idf_ = arrays["idf"]
        estimator.head_ = LogisticRegression(C=estimator.C)
        estimator.head_.coef_, estimator.head_.intercept_ = arrays["coef"], arrays["intercept"]
        estimator.head_.classes_ = arrays["classes"]
        estimator.classes_ = classes_array(manifest)
        return estimator

    @classmethod
    def saved_files(cls) -> SavedFiles:
        return SavedFiles(required=(VOCABULARY_FILE, WEIGHTS_FILE))

    @classmethod
    def check_state(cls, file: Path, manifest: Mapping[str, Any]) -> None:
        state = require_section(file, manifest, "tfidf")
        if state.get("weights_file") != WEIGHTS_FILE:
            raise ModelError(f"{file}: 'tfidf' is {state!r}; expected its weights_file")

    def _fit(self, texts: list[str], labels: list[Label]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=self.max_features)
        features = self.vectorizer_.fit_transform(texts)
        index = {label: position for position, label in enumerate(self.classes_.tolist())}
        self.head_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self.head_.fit(features, np.array([index[label] for label in labels]))
        self.n_features_ = features.shape[1]

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        probabilities = np.zeros((len(texts), len(self.classes_)))
        probabilities[:, self.head_.classes_] = self.head_.predict_proba(self.vectorizer_.transform(texts))
        return probabilities


@pytest.fixture(scope="module")
def tfidf() -> Iterator[type[TfidfClassifier]]:
    registry.register(TfidfClassifier)
    yield TfidfClassifier
    registry.unregister("tfidf")


def _sample() -> tuple[list[str], list[str]]:
    import pandas as pd

    frame = pd.read_csv(SAMPLE / "train.csv")
    return frame["text"].astype(str).tolist(), frame["label"].astype(str).tolist()


@pytest.fixture(scope="module")
def saved(tfidf: type[TfidfClassifier], tmp_path_factory: pytest.TempPathFactory) -> tuple[TfidfClassifier, Path]:
    """Fitted on the bundled sample and saved once for the module (tests that change the folder copy it first)."""
    from bertwise.artifact.folder import save_model
    from bertwise.data.dataset import LabeledTexts

    texts, labels = _sample()
    model = tfidf().fit(texts, labels)
    folder = tmp_path_factory.mktemp("tfidf") / "model"
    save_model(model, folder, training=LabeledTexts(tuple(texts), tuple(labels), source="train.csv"))
    return model, folder


def test_the_registry_knows_it_only_while_registered(tfidf: type[TfidfClassifier]) -> None:
    assert registry.strategy_class("tfidf") is tfidf
    assert registry.strategy_names()[-1] == "tfidf"
    registry.unregister("tfidf")
    assert "tfidf" not in registry.strategy_names()
    registry.register(tfidf)


def test_saved_and_loaded_it_predicts_the_same(saved: tuple[TfidfClassifier, Path]) -> None:
    import bertwise

    model, folder = saved
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["strategy"] == "tfidf"
    assert manifest["params"] == {"C": 10.0, "max_features": 20000, "seed": 0}
    assert manifest["details"] == {"features": model.n_features_}
    assert set(manifest["files"]) == {VOCABULARY_FILE, WEIGHTS_FILE}
    loaded = bertwise.load(folder)
    assert isinstance(loaded, TfidfClassifier)
    texts = ["I still have not received my new card", "how do I top up by bank transfer?"]
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert loaded.classes_.tolist() == model.classes_.tolist()


def test_a_changed_file_is_refused_as_for_any_strategy(saved: tuple[TfidfClassifier, Path], tmp_path: Path) -> None:
    import shutil

    import bertwise

    folder = tmp_path / "copy"
    shutil.copytree(saved[1], folder)
    (folder / VOCABULARY_FILE).write_text("{}", encoding="utf-8")
    with pytest.raises(ModelError, match="vocabulary.json"):
        bertwise.load(folder)


def test_predict_file_writes_its_labels(saved: tuple[TfidfClassifier, Path], tmp_path: Path) -> None:
    import pandas as pd

    from bertwise import predict_file

    model, folder = saved
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": ["my card has not arrived", "exchange rate for euros"]}).to_csv(source, index=False)
    predict_file(folder, source, tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert (
        out["predicted_label"].tolist()
        == model.predict(["my card has not arrived", "exchange rate for euros"]).tolist()
    )


def test_the_serve_app_answers_with_its_predictions(saved: tuple[TfidfClassifier, Path]) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from bertwise.serve import create_app

    model, folder = saved
    texts = ["I lost my card", "what is the fee for a transfer?"]
    with TestClient(create_app(folder, device="cpu")) as client:
        assert client.get("/metadata").json()["model"]["strategy"] == "tfidf"
        response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200
    assert [p["label"] for p in response.json()["predictions"]] == model.predict(texts).tolist()


def test_train_saves_it_by_name(tfidf: type[TfidfClassifier], tmp_path: Path) -> None:
    import bertwise

    model = bertwise.train(SAMPLE, strategy="tfidf", out=tmp_path / "model")
    loaded = bertwise.load(tmp_path / "model")
    assert loaded.manifest_["metrics"] is not None  # scored on the sample's test.csv
    assert loaded.predict(["card not arrived"]).tolist() == model.predict(["card not arrived"]).tolist()


def test_compare_reports_it_and_saves_the_best(tfidf: type[TfidfClassifier], tiny_bert: str, tmp_path: Path) -> None:
    import bertwise

    comparison = bertwise.compare(
        SAMPLE,
        strategies=("tfidf", "probe"),
        model=tiny_bert,
        out=tmp_path / "run",
        device="cpu",
        precision="float32",
        learning_curve=False,
        bootstrap_resamples=100,
        cache=False,
        save_best=tmp_path / "best",
    )
    # Cheapest first under the sequential protocol: whichever of the two that is here.
    assert sorted((result.name, result.status) for result in comparison.results) == [("probe", "ok"), ("tfidf", "ok")]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert "tfidf" in json.dumps(results["strategies"] if "strategies" in results else results)
    assert "tfidf" in (tmp_path / "run" / "summary.md").read_text()
    assert (tmp_path / "run" / "predictions-tfidf.csv").is_file()
    best = bertwise.load(tmp_path / "best")
    assert best.manifest_["strategy"] == comparison.recommendation.strategy
