"""The one reader: a stream read line by line and a text decoded whole give the same records at the same lines."""

from __future__ import annotations

import io
from collections.abc import Iterable

import pytest

from bertwise.data.readers import DelimitedRecords, Lines, MalformedRowError, jsonl_lines, jsonl_objects, text_lines
from bertwise.exceptions import DataError

ENDINGS = ["\n", "\r\n", "\r"]


@pytest.mark.parametrize("end", ENDINGS)
def test_a_stream_and_a_whole_text_split_lines_alike(end: str) -> None:
    text = f'text,label{end}"two{end}lines",a{end}{end}plain \u2028 text,b{end}'
    streamed = list(Lines(io.BytesIO(text.encode()), "in.csv"))
    assert streamed == list(text_lines(text))
    assert len(streamed) == 5


@pytest.mark.parametrize("end", ENDINGS)
def test_records_keep_the_line_they_start_on_whichever_way_the_text_comes(end: str) -> None:
    text = f'text,label{end}"two{end}lines",a{end}{end}three,b{end}'

    def rows(lines: Iterable[str]) -> list[tuple[int, list[str]]]:
        records = DelimitedRecords(lines, "in.csv", ",", literal=False, separator="comma", name_unclosed=True)
        assert records.read_header()
        found = list(records.rows())
        records.check_closed()
        return found

    expected = [(2, [f"two{end}lines", "a"]), (5, ["three", "b"])]
    assert rows(Lines(io.BytesIO(text.encode()), "in.csv")) == expected
    assert rows(text_lines(text)) == expected


def test_a_last_quoted_field_never_closed_is_refused_at_its_first_line() -> None:
    records = DelimitedRecords(
        text_lines('text,label\nok,a\nb,"cut short\nmore\n'),
        "in.csv",
        ",",
        literal=False,
        separator="x",
        name_unclosed=False,
    )
    assert records.read_header()
    assert [line for line, _ in records.rows()] == [2, 3]
    with pytest.raises(MalformedRowError, match=r"in.csv line 3: a quoted field starting on this line is never closed"):
        records.check_closed()


def test_json_lines_are_numbered_as_the_file_counts_them() -> None:
    text = '{"text": "a"}\r\n\r{"text": "b"}\n[1]\n'
    objects = jsonl_objects(jsonl_lines(text), "in.jsonl", example="{}", array_hint="name it .json")
    assert next(objects) == (1, {"text": "a"})
    assert next(objects) == (3, {"text": "b"})
    with pytest.raises(DataError, match=r"in.jsonl line 4: expected a JSON object such as \{\}, found a list"):
        next(objects)


def test_a_stream_names_the_line_of_a_byte_that_is_not_utf8() -> None:
    with pytest.raises(DataError, match=r"in.csv is not valid UTF-8: byte 0xff at line 2; save the file as UTF-8"):
        list(Lines(io.BytesIO(b"text\r\xff\n"), "in.csv"))
