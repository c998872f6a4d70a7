"""Config files and --set: every key checked with its place; command line > file > defaults; results.json's record of
the settings runs the comparison again; params reach the estimators a comparison fits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bertwise.exceptions import ConfigError, DataError
from bertwise.pipeline.comparison import compare
from bertwise.pipeline.settings import layered, parse_sets, read_config, toml_value
from tests.conftest import _write_tiny_bert


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_toml_file_gives_compare_keywords_in_their_own_form(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    config = write(
        tmp_path / "project" / "bertwise.toml",
        '[compare]\ndata = "data/train.csv"\nstrategies = "probe, finetune"\nseeds = 5\ntest_size = 1\n'
        'budget = "15m"\nlabel_descriptions = { sport = "a text about sport" }\n\n'
        "[params.finetune]\nlearning_rate = 5e-5\n\n[params.zero-shot]\nbatch_size = 8\n",
    )
    settings = read_config(config)
    # Relative paths are read from the file's folder, wherever the command runs.
    assert settings["data"] == str(tmp_path / "project" / "data" / "train.csv")
    assert settings["strategies"] == ["probe", "finetune"]
    assert settings["seeds"] == 5 and settings["test_size"] == 1.0 and isinstance(settings["test_size"], float)
    assert settings["label_descriptions"] == {"sport": "a text about sport"}
    assert settings["params"] == {"finetune": {"learning_rate": 5e-5}, "zero-shot": {"batch_size": 8}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[compare]\nseeds = "three"\n', 'bertwise.toml: [compare] seeds: expected an integer, found "three"'),
        ("[compare]\nsedes = 3\n", "bertwise.toml: [compare] sedes: unknown option (did you mean 'seeds'?); expected"),
        ("[compare]\nlearning_curve = 1\n", "bertwise.toml: [compare] learning_curve: expected true or false, found 1"),
        (
            '[compare]\npriority = "speed"\n',
            'bertwise.toml: [compare] priority: expected one of "accuracy", "balanced"',
        ),
        ("[comparison]\nseeds = 3\n", "bertwise.toml: unknown table [comparison]; expected [compare]"),
        ("compare = 3\n", "bertwise.toml: compare: expected a table ([compare]), found 3"),
        ("[params.finetun]\nlearning_rate = 1e-4\n", "bertwise.toml: [params.finetun]: unknown strategy 'finetun'"),
        (
            "[params.finetune]\nlearnin_rate = 1e-4\n",
            "bertwise.toml: [params.finetune] learnin_rate: finetune has no parameter 'learnin_rate'",
        ),
        ('[params.probe]\ncv = "two"\n', 'bertwise.toml: [params.probe] cv: expected an integer, found "two"'),
        ("[compare\n", "bertwise.toml: not valid TOML"),
    ],
)
def test_every_bad_key_or_value_is_one_line_naming_the_file_and_the_key(
    text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bertwise.toml", text)
    with pytest.raises(ConfigError) as refused:
        read_config("bertwise.toml")
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_a_results_json_from_before_effective_config_is_refused_with_the_reason(tmp_path: Path) -> None:
    old = write(tmp_path / "results.json", json.dumps({"config": {}, "strategies": []}))
    with pytest.raises(ConfigError, match="without 'effective_config'"):
        read_config(old)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("5e-5", 5e-5),
        ("3", 3),
        ("true", True),
        ('"text"', "text"),
        ("[0.1, 1.0]", [0.1, 1.0]),
        ("It is {label}.", "It is {label}."),
    ],
)
def test_set_values_are_read_as_toml(raw: str, value: Any) -> None:
    assert toml_value(raw) == value and type(toml_value(raw)) is type(value)


def test_set_items_become_checked_params() -> None:
    assert parse_sets(["finetune.learning_rate=5e-5", "finetune.max_epochs=6", "probe.Cs=[1, 10]"]) == {
        "finetune": {"learning_rate": 5e-5, "max_epochs": 6},
        "probe": {"Cs": (1.0, 10.0)},
    }
    with pytest.raises(ConfigError, match=r"^--set finetune\.learning_rate: expected a number, found \"fast\"$"):
        parse_sets(["finetune.learning_rate=fast"])
    with pytest.raises(ConfigError, match=r"^--set learning_rate: expected strategy\.parameter=value"):
        parse_sets(["learning_rate"])


def test_the_command_line_wins_over_the_file_which_wins_over_the_defaults(tmp_path: Path) -> None:
    config = write(
        tmp_path / "bertwise.toml",
        '[compare]\nseeds = 5\npriority = "cost"\n[params.finetune]\nlearning_rate = 1e-4\nmax_epochs = 6\n',
    )
    defaults = {"seeds": None, "priority": "balanced", "folds": 5}
    merged = layered(defaults, config, {"seeds": 2, "params": {"finetune": {"max_epochs": 8}}})
    assert merged["seeds"] == 2  # command line over file
    assert merged["priority"] == "cost"  # file over default
    assert merged["folds"] == 5  # default
    assert merged["params"] == {"finetune": {"learning_rate": 1e-4, "max_epochs": 8}}  # merged key by key


# On tiny BERTs: the probe alone, no curve, cached nothing, so a comparison takes seconds.
FAST = '[compare]\nstrategies = ["probe"]\nlearning_curve = false\ndevice = "cpu"\nbootstrap_resamples = 200\n'


def test_params_reach_the_fitted_estimators_on_every_backbone_and_results_json_reruns(
    tiny_bert: str, toy_csv: Path, tmp_path: Path
) -> None:
    other = str(_write_tiny_bert(tmp_path / "other", seed=1))
    config = write(
        tmp_path / "bertwise.toml",
        f'{FAST}data = "{toy_csv.name}"\nout = "first"\nmodel = ["{tiny_bert}", "other"]\n'
        "[params.probe]\nCs = [0.25]\ncv = 2\n",
    )
    (tmp_path / toy_csv.name).write_bytes(toy_csv.read_bytes())
    first = compare(config=config, seed=3)  # a keyword passed wins over the file; the rest comes from it
    assert first.config.seed == 3 and first.config.other_models == (other,)
    for result in first.results:  # probe@tiny-bert... and probe@other, each fitted with the file's grid
        assert result.status == "ok", result.error
        assert result.params["Cs"] == [0.25] and result.params["cv"] == 2
        assert result.details["chosen_C"] == 0.25  # from the only C given; the default grid has no 0.25
    saved = json.loads((tmp_path / "first" / "results.json").read_text())
    effective = saved["effective_config"]
    assert effective["params"] == {"probe": {"Cs": [0.25], "cv": 2}}
    assert effective["compare"]["seed"] == 3 and effective["compare"]["data"] == str(tmp_path / toy_csv.name)
    assert effective["compare"]["model"] == [tiny_bert, other]
    assert saved["config"]["params"] == {"probe": {"Cs": [0.25], "cv": 2}}

    # The record runs the same comparison again, from anywhere: the same settings, the same numbers. The run cache's
    # key is every setting that decides a number (params, seed and backbones included): it answers only an identical
    # comparison, so reading every stage back says the settings came back whole.
    again = compare(config=tmp_path / "first" / "results.json", out=tmp_path / "second")
    assert sorted(again.resumed) == sorted(["calibration", *(result.name for result in first.results)])
    rerun = json.loads((tmp_path / "second" / "results.json").read_text())
    assert rerun["effective_config"]["compare"] == {**effective["compare"], "out": str(tmp_path / "second")}
    assert rerun["effective_config"]["params"] == effective["params"]
    assert rerun["config"] == saved["config"]
    assert [r.metrics for r in again.results] == [r.metrics for r in first.results]


def test_params_of_the_wrong_kind_are_refused_before_any_work(toy_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^params\['probe'\]\['cv'\]: expected an integer, found \"2\"$"):
        compare(toy_csv, params={"probe": {"cv": "2"}}, out=tmp_path / "out", model="not/loaded")
    assert not (tmp_path / "out").exists()


def test_unlabeled_texts_and_label_descriptions_may_be_files(toy_csv: Path, tmp_path: Path) -> None:
    """What a config file names by path, compare reads itself (before any work, so its mistakes cost nothing)."""
    texts = write(tmp_path / "more.txt", "\n\n")
    with pytest.raises(ConfigError, match="unlabeled texts are read only with adapt_domain"):
        compare(toy_csv, unlabeled=texts, out=tmp_path / "out")
    with pytest.raises(DataError, match="holds no texts"):
        compare(toy_csv, unlabeled=texts, adapt_domain=True, out=tmp_path / "out")
    with pytest.raises(ConfigError, match="label descriptions file not found"):
        compare(toy_csv, label_descriptions=tmp_path / "missing.json", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_changed_params_are_never_answered_from_the_run_cache(tiny_bert: str, toy_csv: Path, tmp_path: Path) -> None:
    options: dict[str, Any] = {"strategies": ["probe"], "model": tiny_bert, "learning_curve": False, "device": "cpu"}
    options |= {"bootstrap_resamples": 200, "report": False}
    first = compare(toy_csv, params={"probe": {"Cs": [0.25]}}, out=tmp_path / "first", **options)
    same = compare(toy_csv, params={"probe": {"Cs": [0.25]}}, out=tmp_path / "same", **options)
    changed = compare(toy_csv, params={"probe": {"Cs": [4.0]}}, out=tmp_path / "changed", **options)
    assert "probe" in same.resumed  # the cache is on: the identical run is read back
    assert "probe" not in changed.resumed and "calibration" not in changed.resumed
    assert first.results[0].details["chosen_C"] == 0.25 and changed.results[0].details["chosen_C"] == 4.0
