"""Reading single labeled files: every format, label typing, and one test per kind of bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bertwise.data.io import read_labeled_file
from bertwise.exceptions import DataError, DataFileNotFoundError
from tests.data.hostile import time_limit


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Relative paths keep the expected messages short and identical to what a user would see.
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(name: str, content: str | bytes) -> str:
    path = Path(name)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return name


def write_jsonl(name: str, rows: list[object]) -> str:
    return write(name, "".join(json.dumps(row) + "\n" for row in rows))


def write_parquet(name: str, columns: dict[str, list[object]]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), name)
    return name


# -- happy paths -----------------------------------------------------------------------------------


def test_csv_keeps_string_labels_verbatim_and_texts_as_written(here: Path) -> None:
    write("x.csv", 'text,label\nHello there,Not Spam\n"Hi, you",café\n  padded text ,  spam \n')
    data, notes = read_labeled_file("x.csv")
    assert data.texts == ("Hello there", "Hi, you", "  padded text ")
    assert data.labels == ("Not Spam", "café", "spam")
    assert data.source == "x.csv"
    assert notes == []


def test_source_is_the_path_as_given(here: Path) -> None:
    write("x.csv", "text,label\na,b\nc,d\n")
    data, _ = read_labeled_file(here / "x.csv")
    assert data.source == str(here / "x.csv")


def test_csv_integer_labels_become_ints(here: Path) -> None:
    write("x.csv", "text,label\na,0\nb,1\nc,-2\nd, 3 \n")
    data, _ = read_labeled_file("x.csv")
    assert data.labels == (0, 1, -2, 3)
    assert all(type(label) is int for label in data.labels)


def test_csv_labels_with_leading_zeros_or_letters_stay_strings(here: Path) -> None:
    write("x.csv", "text,label\na,007\nb,1\n")
    assert read_labeled_file("x.csv")[0].labels == ("007", "1")
    write("y.csv", "text,label\na,1\nb,two\n")
    assert read_labeled_file("y.csv")[0].labels == ("1", "two")


def test_csv_whole_number_float_labels_become_ints(here: Path) -> None:
    # What pandas writes for an int column that once held NaN.
    write("x.csv", "text,label\na,1.0\nb,0.0\nc,2\n")
    assert read_labeled_file("x.csv")[0].labels == (1, 0, 2)
    write("y.csv", "text,label\na,1.0\nb,0.5\n")
    assert read_labeled_file("y.csv")[0].labels == ("1.0", "0.5")


def test_csv_custom_columns_extra_columns_bom_and_crlf(here: Path) -> None:
    write("x.csv", "\ufeffid,sentence,y\r\n1,first,a\r\n2,second,b\r\n")
    data, _ = read_labeled_file("x.csv", text_col="sentence", label_col="y")
    assert data.texts == ("first", "second")
    assert data.labels == ("a", "b")


def test_csv_multiline_quoted_text(here: Path) -> None:
    write("x.csv", 'text,label\n"line one\nline two",a\nplain,b\n')
    data, _ = read_labeled_file("x.csv")
    assert data.texts == ("line one\nline two", "plain")


def test_csv_blank_lines_are_skipped(here: Path) -> None:
    write("x.csv", "\ntext,label\n\na,x\n   \n,\nb,y\n\n")
    data, notes = read_labeled_file("x.csv")
    assert data.texts == ("a", "b")
    assert notes == []


def test_csv_long_field_beyond_default_csv_limit(here: Path) -> None:
    long_text = "word " * 100_000  # 500 KB, over csv's default 128 KiB field limit
    write("x.csv", f'text,label\n"{long_text}",a\nshort,b\n')
    data, _ = read_labeled_file("x.csv")
    assert data.texts[0] == long_text


def test_tsv(here: Path) -> None:
    write("x.tsv", "text\tlabel\nhello, world\tpos\nbye\tneg\n")
    data, notes = read_labeled_file("x.tsv")
    assert data.texts == ("hello, world", "bye")
    assert data.labels == ("pos", "neg")
    assert notes == []


def test_tsv_without_quoting_is_read_literally(here: Path) -> None:
    # An unquoting writer: the first text starts with a quote that never closes.
    write("x.tsv", 'text\tlabel\n"Hi" she said, "come\tpos\nbye\tneg\n')
    data, notes = read_labeled_file("x.tsv")
    assert data.texts == ('"Hi" she said, "come', "bye")
    assert notes == ["read x.tsv without CSV quoting: its quote characters are part of the texts"]


def test_jsonl_keeps_ints_and_turns_other_labels_into_strings(here: Path) -> None:
    write_jsonl("x.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 0}, {"text": 5, "label": 2.0}])
    data, notes = read_labeled_file("x.jsonl")
    assert data.texts == ("a", "b", "5")
    assert data.labels == (1, 0, 2)
    assert notes == ["read the whole-number labels in column 'label' of x.jsonl as integers (1.0 -> 1)"]


def test_jsonl_string_and_bool_labels(here: Path) -> None:
    write(
        "x.jsonl",
        '{"text": "a", "label": "pos"}\n\n{"text": "b", "label": true}\r\n{"text": "c", "label": "7"}\n',
    )
    data, notes = read_labeled_file("x.jsonl")
    assert data.labels == ("pos", "True", "7")
    assert notes == []


def test_jsonl_mixed_int_and_string_labels_become_strings(here: Path) -> None:
    write_jsonl("x.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": "other"}])
    data, notes = read_labeled_file("x.jsonl")
    assert data.labels == ("1", "other")
    assert notes == ["x.jsonl mixes number and text labels in column 'label'; read them all as text (1 -> '1')"]


def test_json_list_of_objects(here: Path) -> None:
    write("x.json", json.dumps([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]))
    data, _ = read_labeled_file("x.json")
    assert data.texts == ("a", "b")
    assert data.labels == ("x", "y")


def test_parquet_int_labels(here: Path) -> None:
    write_parquet("x.parquet", {"text": ["a", "b", "c"], "label": [2, 0, 1]})
    data, notes = read_labeled_file("x.parquet")
    assert data.texts == ("a", "b", "c")
    assert data.labels == (2, 0, 1)
    assert all(type(label) is int for label in data.labels)
    assert notes == []


def test_parquet_string_labels_and_pandas_categoricals(here: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"sentence": ["a", "b"], "label": pd.Categorical(["Not Spam", "spam"])})
    frame.to_parquet("x.parquet")
    data, _ = read_labeled_file("x.parquet", text_col="sentence")
    assert data.labels == ("Not Spam", "spam")


def test_parquet_whole_number_float_labels_become_ints(here: Path) -> None:
    write_parquet("x.parquet", {"text": ["a", "b"], "label": [1.0, 0.0]})
    data, _ = read_labeled_file("x.parquet")
    assert data.labels == (1, 0)
    assert all(type(label) is int for label in data.labels)


def test_parquet_bool_labels_are_strings(here: Path) -> None:
    write_parquet("x.parquet", {"text": ["a", "b"], "label": [True, False]})
    assert read_labeled_file("x.parquet")[0].labels == ("True", "False")


def test_suffix_is_case_insensitive(here: Path) -> None:
    write("X.CSV", "text,label\na,b\n")
    assert read_labeled_file("X.CSV")[0].labels == ("b",)


def test_100k_row_csv_loads_every_row(here: Path) -> None:
    rows = "".join(f'"This is example sentence number {i}, with a comma",class_{i % 7}\n' for i in range(100_000))
    write("big.csv", "text,label\n" + rows)
    data, _ = read_labeled_file("big.csv")
    assert len(data) == 100_000
    assert data.texts[-1] == "This is example sentence number 99999, with a comma"
    assert data.labels[-1] == "class_4"


# -- 1. missing file -------------------------------------------------------------------------------


def test_missing_file(here: Path) -> None:
    with pytest.raises(
        DataFileNotFoundError,
        match=exact(
            "data file not found: 'x.csv' (expected a .csv, .tsv, .jsonl or .parquet file, "
            "or a folder holding train.* and test.*)"
        ),
    ):
        read_labeled_file("x.csv")


def test_missing_file_is_also_a_file_not_found_error(here: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_labeled_file("nope.jsonl")


# -- 2. unknown format -----------------------------------------------------------------------------


def test_unknown_format(here: Path) -> None:
    write("x.xlsx", b"PK\x03\x04")
    with pytest.raises(
        DataError,
        match=exact(
            "cannot read 'x.xlsx': unknown format '.xlsx'; expected one of .csv, .tsv, .jsonl, .parquet; "
            "save the sheet as CSV (UTF-8)"
        ),
    ):
        read_labeled_file("x.xlsx")


def test_unknown_format_without_extension(here: Path) -> None:
    write("data", "text,label\na,b\n")
    with pytest.raises(
        DataError,
        match=exact(
            "cannot read 'data': unknown format '' (no file extension); expected one of .csv, .tsv, .jsonl, .parquet"
        ),
    ):
        read_labeled_file("data")


def test_a_folder_is_not_a_file(here: Path) -> None:
    Path("d").mkdir()
    with pytest.raises(
        DataError,
        match=exact("cannot read 'd': it is a folder; expected a .csv, .tsv, .jsonl or .parquet file"),
    ):
        read_labeled_file("d")


# -- 3. missing column -----------------------------------------------------------------------------


def test_missing_text_column_suggests_the_remaining_column(here: Path) -> None:
    write("x.csv", "sentence,label\na,b\n")
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv: no text column 'txt' (--text-col); found columns: sentence, label; did you mean 'sentence'?"
        ),
    ):
        read_labeled_file("x.csv", text_col="txt")


def test_missing_text_column_suggests_a_close_name(here: Path) -> None:
    write("x.csv", "id,texts,label,source\n1,a,b,c\n")
    with pytest.raises(DataError, match=re.escape("found columns: id, texts, label, source; did you mean 'texts'?")):
        read_labeled_file("x.csv")


def test_missing_column_suggests_a_case_insensitive_match(here: Path) -> None:
    write("x.csv", "Text,Label\na,b\n")
    with pytest.raises(
        DataError,
        match=exact("x.csv: no text column 'text' (--text-col); found columns: Text, Label; did you mean 'Text'?"),
    ):
        read_labeled_file("x.csv")


def test_missing_label_column(here: Path) -> None:
    write("x.csv", "text,category,source\na,b,c\n")
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv: no label column 'label' (--label-col); found columns: text, category, source; "
            "did you mean 'category'?"
        ),
    ):
        read_labeled_file("x.csv")


def test_missing_column_without_a_close_match_has_no_suggestion(here: Path) -> None:
    write("x.csv", "foo,bar,baz\na,b,c\n")
    with pytest.raises(
        DataError, match=exact("x.csv: no text column 'text' (--text-col); found columns: foo, bar, baz")
    ):
        read_labeled_file("x.csv")


def test_missing_column_in_jsonl(here: Path) -> None:
    write_jsonl("x.jsonl", [{"sentence": "a", "label": "x"}])
    with pytest.raises(
        DataError,
        match=exact(
            "x.jsonl: no text column 'text' (--text-col); found columns: sentence, label; did you mean 'sentence'?"
        ),
    ):
        read_labeled_file("x.jsonl")


def test_missing_column_in_parquet(here: Path) -> None:
    write_parquet("x.parquet", {"text": ["a"], "intent": ["b"]})
    with pytest.raises(
        DataError,
        match=exact(
            "x.parquet: no label column 'label' (--label-col); found columns: text, intent; did you mean 'intent'?"
        ),
    ):
        read_labeled_file("x.parquet")


def test_text_and_label_column_must_differ(here: Path) -> None:
    write("x.csv", "text,label\na,b\n")
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv: the text and label columns are both 'text' (--text-col, --label-col); "
            "expected two different columns"
        ),
    ):
        read_labeled_file("x.csv", label_col="text")


# -- 4. empty file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "text,label\n", "text,label\n\n\n", "\n  \n"])
def test_empty_csv(here: Path, content: str) -> None:
    write("x.csv", content)
    with pytest.raises(DataError, match=exact("x.csv is empty: expected a header row and at least one data row")):
        read_labeled_file("x.csv")


def test_empty_jsonl(here: Path) -> None:
    write("x.jsonl", "\n\n")
    with pytest.raises(
        DataError, match=exact("x.jsonl is empty: expected one JSON object per line, and at least one line")
    ):
        read_labeled_file("x.jsonl")


def test_empty_json_list(here: Path) -> None:
    write("x.json", "[]")
    with pytest.raises(
        DataError, match=exact("x.json is empty: expected a JSON list of objects with at least one item")
    ):
        read_labeled_file("x.json")


def test_empty_parquet(here: Path) -> None:
    write_parquet("x.parquet", {"text": [], "label": []})
    with pytest.raises(DataError, match=exact("x.parquet is empty: expected a Parquet file with at least one row")):
        read_labeled_file("x.parquet")


def test_zero_byte_parquet(here: Path) -> None:
    write("x.parquet", b"")
    with pytest.raises(DataError, match=exact("x.parquet is empty: expected a Parquet file with at least one row")):
        read_labeled_file("x.parquet")


def test_parquet_that_is_not_parquet(here: Path) -> None:
    write("x.parquet", "text,label\na,b\n")
    with pytest.raises(DataError, match=r"^cannot read x\.parquet as Parquet \(.+\); expected a Parquet file"):
        read_labeled_file("x.parquet")


# -- 5. empty texts are dropped --------------------------------------------------------------------


def test_rows_with_empty_text_are_dropped_with_a_note(here: Path) -> None:
    write("x.csv", 'text,label\na,x\nb,y\n"",x\n  ,y\nc,x\n"multi\nline",y\n,x\n')
    data, notes = read_labeled_file("x.csv")
    assert data.texts == ("a", "b", "c", "multi\nline")
    assert notes == ["dropped 3 of 7 rows in x.csv whose text is empty or whitespace-only (lines 4, 5, 9)"]


def test_dropped_rows_list_the_first_five_lines(here: Path) -> None:
    write("x.csv", "text,label\n" + ",x\n" * 7 + "a,x\n")
    _, notes = read_labeled_file("x.csv")
    assert notes == ["dropped 7 of 8 rows in x.csv whose text is empty or whitespace-only (lines 2, 3, 4, 5, 6, ...)"]


def test_jsonl_null_or_missing_text_is_dropped(here: Path) -> None:
    write_jsonl("x.jsonl", [{"text": "a", "label": "x"}, {"text": None, "label": "x"}, {"label": "y"}])
    data, notes = read_labeled_file("x.jsonl")
    assert data.texts == ("a",)
    assert notes == ["dropped 2 of 3 rows in x.jsonl whose text is empty or whitespace-only (lines 2, 3)"]


def test_parquet_dropped_rows_are_named_by_row(here: Path) -> None:
    write_parquet("x.parquet", {"text": ["a", None, " "], "label": ["x", "y", "z"]})
    _, notes = read_labeled_file("x.parquet")
    assert notes == ["dropped 2 of 3 rows in x.parquet whose text is empty or whitespace-only (rows 2, 3)"]


def test_every_text_empty(here: Path) -> None:
    write("x.csv", "text,label\n ,a\n,b\n")
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv: all 2 rows have an empty or whitespace-only text in column 'text'; expected texts to classify"
        ),
    ):
        read_labeled_file("x.csv")


# -- 6. missing labels -----------------------------------------------------------------------------


def test_missing_labels_in_csv(here: Path) -> None:
    write("x.csv", "text,label\na,x\nb,y\nc,x\nd,\ne,y\nf,x\ng, \n")
    with pytest.raises(
        DataError,
        match=exact("x.csv: 2 rows have no label in column 'label' (lines 5, 8); expected every row to be labeled"),
    ):
        read_labeled_file("x.csv")


def test_missing_label_in_jsonl(here: Path) -> None:
    write("x.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n{"text": "c", "label": NaN}\n')
    with pytest.raises(
        DataError,
        match=exact("x.jsonl: 2 rows have no label in column 'label' (lines 2, 3); expected every row to be labeled"),
    ):
        read_labeled_file("x.jsonl")


def test_missing_label_in_parquet(here: Path) -> None:
    write_parquet("x.parquet", {"text": ["a", "b"], "label": [1.0, float("nan")]})
    with pytest.raises(
        DataError,
        match=exact("x.parquet: 1 row has no label in column 'label' (row 2); expected every row to be labeled"),
    ):
        read_labeled_file("x.parquet")


# -- 7. not UTF-8 ----------------------------------------------------------------------------------


def test_not_utf8(here: Path) -> None:
    write("x.csv", b"text,label\nabc,x\nna\xefve caf\xe9,y\n")
    with pytest.raises(
        DataError,
        match=exact("x.csv is not valid UTF-8: byte 0xef at line 3 (byte offset 19); save the file as UTF-8"),
    ):
        read_labeled_file("x.csv")


def test_utf16_is_named(here: Path) -> None:
    write("x.jsonl", '{"text": "a", "label": "b"}\n'.encode("utf-16"))
    with pytest.raises(DataError, match=re.escape("x.jsonl is not valid UTF-8 (it looks like UTF-16): byte 0x")):
        read_labeled_file("x.jsonl")


# -- 8. malformed rows -----------------------------------------------------------------------------


def test_csv_row_with_too_many_fields(here: Path) -> None:
    write("x.csv", "text,label\na,x\nb,y\nc,x\nd,y\ne,x\nhello, world,y\n")
    with pytest.raises(
        DataError,
        match=exact("x.csv line 7: expected 2 fields as in the header, found 3 (an unquoted comma or quote?)"),
    ):
        read_labeled_file("x.csv")


def test_csv_unterminated_quote_in_the_middle(here: Path) -> None:
    write("x.csv", 'text,label\na,x\n"broken,y\nc,x\nd,y\n')
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv line 3: expected 2 fields as in the header, found 1 "
            "(an unquoted comma or quote?; the record runs on to line 5: an unclosed quote?)"
        ),
    ):
        read_labeled_file("x.csv")


def test_csv_unterminated_quote_in_the_last_column(here: Path) -> None:
    write("x.csv", 'text,label\na,x\nb,"y\nc,x\n')
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv line 3: a quoted field starting on this line is never closed; "
            "expected a closing '\"' (an unbalanced quote?)"
        ),
    ):
        read_labeled_file("x.csv")


def test_tsv_row_with_too_few_fields(here: Path) -> None:
    write("x.tsv", "text\tlabel\na\tx\nno tab here\n")
    with pytest.raises(
        DataError,
        match=exact("x.tsv line 3: expected 2 fields as in the header, found 1 (an unquoted tab or quote?)"),
    ):
        read_labeled_file("x.tsv")


def test_jsonl_invalid_line(here: Path) -> None:
    write("x.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "c", label: "x"}\n')
    with pytest.raises(
        DataError,
        match=exact(
            "x.jsonl line 3: not valid JSON (Expecting property name enclosed in double quotes at column "
            "15); expected one JSON object per line"
        ),
    ):
        read_labeled_file("x.jsonl")


def test_jsonl_line_that_is_not_an_object(here: Path) -> None:
    write("x.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n')
    with pytest.raises(
        DataError,
        match=exact('x.jsonl line 2: expected a JSON object such as {"text": "...", "label": "..."}, found a list'),
    ):
        read_labeled_file("x.jsonl")


def test_jsonl_holding_a_json_array_says_so(here: Path) -> None:
    write("x.jsonl", '[\n  {"text": "a", "label": "x"}\n]\n')
    with pytest.raises(DataError, match=re.escape("the file looks like a JSON array: name it .json")):
        read_labeled_file("x.jsonl")


def test_json_that_is_not_a_list(here: Path) -> None:
    write("x.json", '{"text": "a", "label": "x"}')
    with pytest.raises(
        DataError,
        match=exact(
            'x.json: expected a JSON list of objects such as [{"text": "...", "label": "..."}], found an object'
        ),
    ):
        read_labeled_file("x.json")


def test_json_invalid(here: Path) -> None:
    write("x.json", '[\n{"text": "a", "label": "x"},\n]')
    with pytest.raises(DataError, match=r"^x\.json line 3: not valid JSON \(.+\); expected a JSON list of objects$"):
        read_labeled_file("x.json")


def test_every_message_is_one_line(here: Path) -> None:
    write("x.csv", 'text,label\n"a\nb",x\n"c\nd,e,f",y,z\n')
    with pytest.raises(DataError) as caught:
        read_labeled_file("x.csv")
    assert "\n" not in str(caught.value)


def test_tsv_malformed_quoting(here: Path) -> None:
    # Neither reading works: quoted, line 2 breaks; literally, line 2 has 3 fields; the quoted one is kept.
    write("x.tsv", 'text\tlabel\n"a\tb"c\tpos\nfine\tneg\n')
    with pytest.raises(
        DataError,
        match=exact(
            "x.tsv line 2: malformed quoting ('\\t' expected after '\"'); "
            "expected a quoted field to end with a quote followed by a separator"
        ),
    ):
        read_labeled_file("x.tsv")


def test_tsv_reports_the_reading_that_got_further(here: Path) -> None:
    write("x.tsv", 'text\tlabel\n"Hi" she said\tpos\nfine\tneg\nno tab\n')
    with pytest.raises(
        DataError,
        match=exact("x.tsv line 4: expected 2 fields as in the header, found 1 (an unquoted tab or quote?)"),
    ):
        read_labeled_file("x.tsv")


def test_tsv_with_a_quoted_header_reports_the_quoted_complaint(here: Path) -> None:
    write("x.tsv", '"text"\t"label"\nfine\tpos\nno tab\n')
    with pytest.raises(
        DataError,
        match=exact("x.tsv line 3: expected 2 fields as in the header, found 1 (an unquoted tab or quote?)"),
    ):
        read_labeled_file("x.tsv")


# -- 9. hostile files (issue 12): nested, deep, repeated, NaN, not a regular file --------------------------------


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (
            {"text": [["What state is this?"], ["b"]], "label": ["a", "b"]},
            "x.parquet row 1: the text in column 'text' is a list (['What state is this?']); expected one string per "
            "row (join the parts into one text, or give one row per part)",
        ),
        (
            {"text": ["a", "b"], "label": ["x", {"a": "entity"}]},
            None,  # pyarrow cannot mix a struct and a string: built below as a struct column
        ),
    ],
)
def test_a_nested_parquet_cell_is_refused_with_its_column_and_row(
    here: Path, columns: dict[str, list[object]], expected: str | None
) -> None:
    if expected is None:
        columns = {"text": ["a", "b"], "label": [{"a": "entity"}, {"a": "b"}]}
        expected = (
            "x.parquet row 1: the label in column 'label' is an object ({'a': 'entity'}); expected one string or "
            "number per row (one class per text)"
        )
    write_parquet("x.parquet", columns)
    with pytest.raises(DataError, match=exact(expected)):
        read_labeled_file("x.parquet")


def test_a_nested_json_cell_is_refused_and_shown_briefly(here: Path) -> None:
    deep = {"a": [[[[["very deep"]]]]], "b": "x" * 1000}
    write_jsonl("x.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}, {"text": deep, "label": "y"}])
    with pytest.raises(DataError) as caught:
        read_labeled_file("x.jsonl")
    message = str(caught.value)
    assert message.startswith("x.jsonl line 3: the text in column 'text' is an object ({'a': [[...]], 'b': 'xxx")
    assert len(message) < 250
    write("y.json", json.dumps([{"text": "a", "label": ["x", "y"]}]))
    with pytest.raises(DataError, match=re.escape("y.json item 1: the label in column 'label' is a list (['x', 'y'])")):
        read_labeled_file("y.json")


@pytest.mark.parametrize("name", ["x.json", "x.jsonl"])
def test_json_nested_100000_deep_is_one_clear_error(here: Path, name: str) -> None:
    depth = 100_000
    if name == "x.json":
        write(name, "[" * depth + "]" * depth)
        expected = "x.json line 1: not valid JSON (arrays or objects nested too deep to read, 100000 levels, at column "
    else:
        write(name, '{"text": "a", "label": "x"}\n{"text": ' + "[" * depth + "]" * depth + ', "label": "y"}\n')
        expected = (
            "x.jsonl line 2: not valid JSON (arrays or objects nested too deep to read, 100001 levels, at column "
        )
    with pytest.raises(DataError, match="^" + re.escape(expected) + r"\d+\)"):
        read_labeled_file(name)


def test_json_nested_within_the_parser_limit_is_refused_as_nested(here: Path) -> None:
    write("x.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": ' + "[" * 200 + "]" * 200 + "}\n")
    with pytest.raises(DataError, match=re.escape("x.jsonl line 2: the label in column 'label' is a list ([[[...]]])")):
        read_labeled_file("x.jsonl")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_named_pipe_or_a_device_is_refused_without_opening_it(here: Path, kind: str) -> None:
    import os

    if kind == "fifo":
        os.mkfifo("x.csv")  # no writer: opening it would wait forever
        what = "a named pipe (FIFO)"
    else:
        os.symlink("/dev/null", "x.csv")  # a device; /dev/zero would be endless, and a regression would fill the memory
        what = "a device"
    with pytest.raises(
        DataError,
        match=exact(
            f"cannot read 'x.csv': it is {what}, not a regular file; expected a .csv, .tsv, .jsonl or .parquet file"
        ),
    ):
        with time_limit(30):  # a regression would wait forever: fail instead
            read_labeled_file("x.csv")


@pytest.mark.parametrize("spelling", ["NaN", "nan", "-nan", "NAN"])
def test_a_label_spelled_nan_is_a_missing_label_in_every_format(here: Path, spelling: str) -> None:
    hint = "; a label spelled NaN counts as none, as pandas reads it"
    write("x.csv", f"text,label\na,x\nb,{spelling}\nc,y\n")
    with pytest.raises(
        DataError,
        match=exact(f"x.csv: 1 row has no label in column 'label' (line 3); expected every row to be labeled{hint}"),
    ):
        read_labeled_file("x.csv")
    write_jsonl("x.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": spelling}])
    with pytest.raises(DataError, match=re.escape(f"(line 2); expected every row to be labeled{hint}")):
        read_labeled_file("x.jsonl")
    write_parquet("x.parquet", {"text": ["a", "b"], "label": [spelling, "x"]})
    with pytest.raises(DataError, match=re.escape(f"(row 1); expected every row to be labeled{hint}")):
        read_labeled_file("x.parquet")


def test_the_other_missing_value_spellings_stay_labels_and_a_nan_text_stays_text(here: Path) -> None:
    # "None" and "NA" name real classes too often ("no intent", "North America") to be taken for missing values.
    write("x.csv", "text,label\nNaN,None\nb,NA\nc,null\n")
    data, _ = read_labeled_file("x.csv")
    assert data.texts == ("NaN", "b", "c")
    assert data.labels == ("None", "NA", "null")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("text,label,text", "x.csv: 2 columns are named 'text' (columns 1, 3 of 3); expected one text column"),
        ("label,text,label", "x.csv: 2 columns are named 'label' (columns 1, 3 of 3); expected one label column"),
        ("text, text ,label", "x.csv: 2 columns are named 'text' (columns 1, 2 of 3); expected one text column"),
    ],
)
def test_a_second_text_or_label_column_is_refused(here: Path, header: str, expected: str) -> None:
    write("x.csv", f"{header}\na,b,c\nd,e,f\n")
    with pytest.raises(DataError, match=exact(expected + " (rename or drop the others)")):
        read_labeled_file("x.csv")


def test_another_repeated_column_is_no_concern(here: Path) -> None:
    write("x.csv", "id,text,id,label\n1,a,2,x\n3,b,4,y\n")
    assert read_labeled_file("x.csv")[0].texts == ("a", "b")


def test_a_repeated_parquet_column_is_refused(here: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pa.array(["a", "b"])
    pq.write_table(pa.Table.from_arrays([column, column, column], names=["text", "label", "label"]), "x.parquet")
    with pytest.raises(DataError, match=re.escape("x.parquet: 2 columns are named 'label' (columns 2, 3 of 3)")):
        read_labeled_file("x.parquet")


@pytest.mark.parametrize("key", ["text", "label"])
def test_a_repeated_json_key_is_refused_where_it_matters(here: Path, key: str) -> None:
    write("x.jsonl", f'{{"text": "a", "label": "x"}}\n{{"text": "b", "label": "y", "{key}": "z"}}\n')
    with pytest.raises(
        DataError,
        match=exact(
            f"x.jsonl line 2: the object gives the key '{key}' more than once; expected each key once (JSON keeps "
            "only the last, silently)"
        ),
    ):
        read_labeled_file("x.jsonl")
    write("y.jsonl", '{"text": "a", "label": "x", "id": 1, "id": 2}\n{"text": "b", "label": "y", "id": 3}\n')
    assert read_labeled_file("y.jsonl")[0].labels == ("x", "y")  # other keys are not read


def test_utf16_without_a_byte_order_mark_is_named(here: Path) -> None:
    write("x.csv", "text,label\na,b\n".encode("utf-16-le"))
    with pytest.raises(
        DataError,
        match=exact("x.csv is not UTF-8: it looks like UTF-16 without a byte-order mark; save the file as UTF-8"),
    ):
        read_labeled_file("x.csv")


def test_nul_bytes_and_control_characters_stay_in_texts_but_never_reach_a_message(here: Path) -> None:
    write("x.csv", b"text,label\na\x00b,x\nc,y\n")
    assert read_labeled_file("x.csv")[0].texts == ("a\x00b", "c")
    write("y.csv", "te\x00x\u2028t,label\na,b\n")
    with pytest.raises(DataError) as caught:
        read_labeled_file("y.csv")
    assert "found columns: te\\x00x\\u2028t, label" in str(caught.value)
    assert str(caught.value).isprintable()


def test_a_header_of_thousands_of_columns_is_listed_briefly(here: Path) -> None:
    write("x.csv", ",".join(f"column_{i}_{'x' * 100}" for i in range(5000)) + "\n" + "a," * 4999 + "a\n")
    with pytest.raises(DataError) as caught:
        read_labeled_file("x.csv")
    assert ", ... (5000 in all)" in str(caught.value)
    assert len(str(caught.value)) < 2000


def test_a_lone_surrogate_escape_is_refused(here: Path) -> None:
    write("x.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "\\udc80y"}\n')
    with pytest.raises(
        DataError,
        match=exact(
            "x.jsonl line 2: the label in column 'label' holds a lone surrogate (\\udc80, at character 1), half of a "
            "UTF-16 pair and no character; expected valid Unicode text"
        ),
    ):
        read_labeled_file("x.jsonl")


def test_numbers_too_long_for_int_are_refused_in_json_and_kept_as_text_in_csv(here: Path) -> None:
    write("x.jsonl", '{"text": "a", "label": ' + "7" * 5000 + "}\n")
    with pytest.raises(DataError, match=re.escape("x.jsonl line 1: not valid JSON (a number of more than 4300 digits")):
        read_labeled_file("x.jsonl")
    long_id = "1" * 5000
    write("x.csv", f"text,label\na,{long_id}\nb,2\nc,{'9' * 400}.0\n")
    assert read_labeled_file("x.csv")[0].labels == (long_id, "2", "9" * 400 + ".0")


def test_a_quote_left_open_on_the_last_line_is_refused(here: Path) -> None:
    write("x.csv", 'text,label\na,x\nb,"y')  # the file was cut inside the last quoted field
    with pytest.raises(
        DataError, match=re.escape("x.csv line 3: a quoted field starting on this line is never closed")
    ):
        read_labeled_file("x.csv")


def test_lines_ended_by_a_lone_cr_are_read_in_every_text_format(here: Path) -> None:
    write("x.csv", 'text,label\r"a,\rb",x\rc,y\r')
    assert read_labeled_file("x.csv")[0].texts == ("a,\rb", "c")
    write("x.jsonl", '{"text": "a", "label": "x"}\r{"text": "b\\r", "label": "y"}\r')
    assert read_labeled_file("x.jsonl")[0].texts == ("a", "b\r")
