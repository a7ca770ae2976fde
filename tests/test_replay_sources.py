"""Reading CloudTrail files: every format, every position, every kind of damage."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from ssm_detect.replay.sources import (
    FilteredRecords,
    Problem,
    RawRecord,
    RecordList,
    input_files,
    read_file,
)


def rec(n: int) -> dict[str, Any]:
    return {"eventID": f"e{n}", "eventSource": "ssm.amazonaws.com"}


def read(path: Path) -> list[tuple[str, object]]:
    """(position without the folder, record or problem reason), one per record."""
    folder = f"{path.parent}/"
    found: list[tuple[str, object]] = []
    for item in read_file(path):
        if isinstance(item, RecordList):
            found += [(item.origin_of(i), body) for i, body in enumerate(item.items)]
        elif isinstance(item, FilteredRecords):
            # These records are all SSM's: the prefilter keeps every one, parsed later.
            assert item.total == len(item.needed)
            found += [(item.origin_of(i), json.loads(text)) for i, text in item.needed]
        elif isinstance(item, RawRecord):
            found.append((item.origin, item.body))
        else:
            found.append((item.origin, item.reason))
    return [(origin.removeprefix(folder), body) for origin, body in found]


def lines(*records: object) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_read_s3_log_object_gzip_positions_each_record(tmp_path: Path) -> None:
    path = tmp_path / "111122223333_CloudTrail_us-east-1_20250301T0000Z_x.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": [rec(1), rec(2)]}).encode()))
    assert read(path) == [(f"{path.name}:Records[0]", rec(1)), (f"{path.name}:Records[1]", rec(2))]


def test_read_json_array_positions_each_element(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text(json.dumps([rec(1), rec(2)]))
    assert read(path) == [("array.json:[0]", rec(1)), ("array.json:[1]", rec(2))]


def test_read_pretty_printed_document_whole(tmp_path: Path) -> None:
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps({"Records": [rec(1)]}, indent=2))
    assert read(path) == [("pretty.json:Records[0]", rec(1))]


def test_read_envelope_is_one_record_at_the_file(tmp_path: Path) -> None:
    envelope = {"id": "x", "detail-type": "AWS API Call via CloudTrail", "detail": rec(1)}
    path = tmp_path / "envelope.json"
    path.write_text(json.dumps(envelope, indent=2))
    assert read(path) == [("envelope.json", envelope)]


def test_read_json_lines_by_line_number_skipping_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    path.write_bytes(lines(rec(1)) + b"\n   \n" + lines({"Records": [rec(2)]}))
    assert read(path) == [("trail.jsonl:1", rec(1)), ("trail.jsonl:4:Records[0]", rec(2))]


def test_read_json_lines_in_a_json_file(tmp_path: Path) -> None:
    """Exports often write JSON lines under a `.json` name: two complete values, two lines."""
    path = tmp_path / "export.json"
    path.write_bytes(lines(rec(1), rec(2)))
    assert read(path) == [("export.json:1", rec(1)), ("export.json:2", rec(2))]


def test_read_gzip_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl.gz"
    path.write_bytes(gzip.compress(lines(rec(1), rec(2))))
    assert read(path) == [("trail.jsonl.gz:1", rec(1)), ("trail.jsonl.gz:2", rec(2))]


def test_read_non_json_line_is_reported_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    path.write_bytes(lines(rec(1)) + b"{not json\n" + lines(rec(3)))
    assert read(path) == [
        ("trail.jsonl:1", rec(1)),
        (
            "trail.jsonl:2",
            "not JSON: Expecting property name enclosed in double quotes at column 2",
        ),
        ("trail.jsonl:3", rec(3)),
    ]


def test_read_json_file_whose_first_line_is_broken_reads_the_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(b'{"eventID": \n' + lines(rec(2), rec(3)))
    assert [origin for origin, _ in read(path)] == [
        "export.json:1",
        "export.json:2",
        "export.json:3",
    ]
    assert read(path)[0][1] == "not JSON: Expecting value at column 13"


def test_read_broken_pretty_printed_document_is_one_problem_with_its_position(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps({"Records": [rec(1)]}, indent=2)[:-3])
    assert read(path) == [("pretty.json", "not JSON: Expecting ',' delimiter at line 7 column 3")]


def test_read_truncated_gzip_keeps_the_lines_before_the_damage(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl.gz"
    whole = gzip.compress(lines(*(rec(n) for n in range(2000))))
    path.write_bytes(whole[: len(whole) // 2])
    result = read(path)
    records = [body for _, body in result[:-1]]
    assert records == [rec(n) for n in range(len(records))]
    assert len(records) > 100
    assert result[-1] == (
        f"trail.jsonl.gz:{len(records) + 1}",
        "unreadable: truncated gzip (the file ends before the compressed stream does)",
    )


def test_read_truncated_gzip_document_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "object.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": [rec(1)]}).encode())[:-8])
    assert read(path) == [
        (
            "object.json.gz",
            "unreadable: truncated gzip (the file ends before the compressed stream does)",
        )
    ]


def test_read_corrupt_gzip_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "object.json.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    [(origin, reason)] = read(path)
    assert origin == "object.json.gz"
    assert isinstance(reason, str)
    assert reason.startswith("unreadable: corrupt gzip")


def test_read_invalid_utf8_line_in_gzip_is_reported_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl.gz"
    path.write_bytes(gzip.compress(lines(rec(1)) + b'{"eventID": "\xff\xfe"}\n' + lines(rec(3))))
    assert read(path) == [
        ("trail.jsonl.gz:1", rec(1)),
        ("trail.jsonl.gz:2", "not UTF-8: byte 13 cannot be decoded"),
        ("trail.jsonl.gz:3", rec(3)),
    ]


def test_read_invalid_utf8_in_gzip_document_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "object.json.gz"
    path.write_bytes(gzip.compress(b'{"Records": [{"eventID": "\xc3\x28"}]}'))
    assert read(path) == [("object.json.gz", "not UTF-8: byte 26 cannot be decoded")]


def test_read_empty_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("\n\n")
    assert read(path) == []


def test_read_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "folder.json"
    path.mkdir()
    [item] = list(read_file(path))
    assert isinstance(item, Problem)
    assert item.reason.startswith("unreadable: IsADirectoryError")


def test_read_json_lines_streams_without_reading_the_file_first(tmp_path: Path) -> None:
    """The first record of a JSON-lines file is handed on before the last line is written."""
    path = tmp_path / "growing.jsonl"
    path.write_bytes(lines(rec(1)))
    with path.open("ab") as appending:
        items = read_file(path)
        first = next(items)
        appending.write(lines(rec(2)))
    assert isinstance(first, RawRecord)
    assert first.body == rec(1)
    assert [i.body for i in items if isinstance(i, RawRecord)] == [rec(2)]


def test_input_files_walks_folders_for_cloudtrail_names_in_a_stable_order(tmp_path: Path) -> None:
    for name in ("b/2.json.gz", "a/1.jsonl", "a/notes.txt", "c.ndjson", "z.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    named = tmp_path / "a" / "notes.txt"
    found = [p.relative_to(tmp_path).as_posix() for p in input_files([tmp_path, named])]
    assert found == ["a/1.jsonl", "b/2.json.gz", "c.ndjson", "z.json", "a/notes.txt"]


def test_read_a_line_cut_short_is_reported_at_its_own_column(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    path.write_bytes(b'{"eventVersion": \n' + lines(rec(2)))
    assert read(path) == [
        ("trail.jsonl:1", "not JSON: Expecting value at column 19"),
        ("trail.jsonl:2", rec(2)),
    ]


def test_read_a_document_nested_too_deeply_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 5000 + "]" * 5000)
    assert read(path) == [("deep.json", "nested too deeply to parse")]
