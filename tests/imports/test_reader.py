"""The CSV reader: encodings, delimiters, quoting, and located errors."""

import pytest

from webapp.imports.reader import (
    MAX_LINE,
    CsvStream,
    FileError,
    RecordError,
    detect_encoding,
    quote_column,
    read_header,
    sniff,
    sniff_delimiter,
)

from .conftest import FIXTURES


def records(path):
    encoding, delimiter = sniff(path)
    out = []
    with CsvStream(path, encoding, delimiter) as stream:
        out.append(read_header(stream)[1])
        while True:
            try:
                out.append(next(stream))
            except StopIteration:
                return encoding, delimiter, out
            except RecordError as exc:
                out.append(("error", exc.line, exc.message, exc.column_index))


@pytest.mark.parametrize(
    "name, encoding, delimiter",
    [
        ("customers.csv", "utf-8", ","),
        ("customers_cp1251.csv", "cp1251", ";"),
        ("customers_bom_semicolon.csv", "utf-8-sig", ";"),
        ("customers_utf16.csv", "utf-16", "\t"),
    ],
)
def test_detects_encoding_and_delimiter(name, encoding, delimiter):
    assert sniff(FIXTURES / name) == (encoding, delimiter)


def test_cp1251_with_semicolons_and_decimal_commas_reads_russian_text():
    encoding, delimiter, rows = records(FIXTURES / "customers_cp1251.csv")
    assert rows[0] == ["external_id", "first_name", "last_name", "city", "email_consent", "birth_date", "custom.score"]
    assert rows[1] == (2, 2, ["r1", "Иван", "Иванов", "Москва", "да", "01.02.1980", "12,5"])
    assert rows[2][2][3] == "Санкт-Петербург"


def test_bom_is_not_part_of_the_first_column_name():
    _enc, _delim, rows = records(FIXTURES / "customers_bom_semicolon.csv")
    assert rows[0][0] == "external_id"


def test_utf16_without_bom_is_detected(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes("external_id,city\n1,Самара\n".encode("utf-16-le"))
    encoding, _delim, rows = records(path)
    assert encoding == "utf-16-le"
    assert rows[1][2] == ["1", "Самара"]


def test_quoted_newlines_and_doubled_quotes_keep_line_numbers():
    _enc, _delim, rows = records(FIXTURES / "customers.csv")
    # c4 starts on line 5 and its quoted city spans two lines.
    line, end_line, cells = rows[4]
    assert (line, end_line) == (5, 6)
    assert cells[2] == 'Anna "Annie"'
    assert cells[9] == "New\nYork"


def test_latin1_is_refused_with_line_and_character():
    with pytest.raises(FileError) as err:
        sniff(FIXTURES / "broken" / "wrong_encoding_latin1.csv")
    assert err.value.line == 2
    assert "Line 2, character 7" in str(err.value)
    assert "UTF-8" in str(err.value)


def test_bad_bytes_after_the_sample_are_found_with_their_line(tmp_path):
    path = tmp_path / "late.csv"
    body = "".join(f"{i},name{i}\n" for i in range(40000))  # > the 256 KB sniffing sample
    path.write_bytes(b"id,name\n" + body.encode() + b"40000,Jos\xe9\n")
    encoding, delimiter = sniff(path)
    assert encoding == "utf-8"
    with CsvStream(path, encoding, delimiter) as stream, pytest.raises(FileError) as err:
        read_header(stream)
        for _ in stream:
            pass
    assert err.value.line == 40002
    assert "Line 40002, character 10" in str(err.value)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"PK\x03\x04rest", "Excel workbook"),
        (b"\xd0\xcf\x11\xe0rest", "old Excel"),
        (b"id,name\n1,\x00\x01\x02", "binary data"),
    ],
)
def test_files_that_are_not_csv_text(data, message):
    with pytest.raises(FileError) as err:
        detect_encoding(data)
    assert message in str(err.value)


def test_unclosed_quote_is_a_file_error_naming_line_and_column():
    path = FIXTURES / "broken" / "truncated_quote.csv"
    encoding, delimiter = sniff(path)
    with CsvStream(path, encoding, delimiter) as stream, pytest.raises(FileError) as err:
        read_header(stream)
        for _ in stream:
            pass
    assert (err.value.line, err.value.column) == (3, 1)
    assert "Line 3, column first_name" in str(err.value)
    assert "closing quote" in str(err.value)


def test_text_after_a_closing_quote_rejects_that_record_only(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('a,b,c\n1,"x"y,2\n3,4,5\n')
    _enc, _delim, rows = records(path)
    assert rows[1][:2] == ("error", 2)
    assert "closing quote" in rows[1][2]
    assert rows[1][3] == 1
    assert rows[2] == (3, 3, ["3", "4", "5"])


def test_a_huge_line_is_skipped_and_reading_goes_on(tmp_path):
    path = tmp_path / "long.csv"
    with open(path, "w") as f:
        f.write("a,b\n1,2\n")
        f.write("x" * (MAX_LINE * 3) + ",y\n")
        f.write("3,4\n")
    _enc, _delim, rows = records(path)
    assert rows[1] == (2, 2, ["1", "2"])
    assert rows[2][0:2] == ("error", 3)
    assert "3,000,002 characters" in rows[2][2]
    assert rows[3] == (4, 4, ["3", "4"])


def test_blank_lines_and_delimiter_only_lines_are_skipped(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("a;b\n\n1;2\n;;\n  \n3;4\n")
    _enc, delimiter, rows = records(path)
    assert delimiter == ";"
    assert [r[0] for r in rows[1:]] == [3, 6]


def test_sniffing_prefers_the_delimiter_that_splits_rows_consistently():
    assert sniff_delimiter("id;total;city\n1;12,50;Москва\n2;3,00;Тверь\n") == ";"
    assert sniff_delimiter("id,total,city\n1,12.50,Moscow\n2,3.00,Tver\n") == ","
    assert sniff_delimiter("email\na@example.com\nb@example.com\n") == ","
    assert sniff_delimiter("a\tb\tc\n1\t2\t3\n") == "\t"


def test_quote_column_finds_the_broken_field():
    assert quote_column('1,"open,2\n', ",") == 1
    assert quote_column('1,"a""b",x\n', ",") is None
    assert quote_column('1,"a"b,x\n', ",") == 1


def test_a_line_with_nul_bytes_is_skipped(tmp_path):
    path = tmp_path / "nul.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 70000 + b"x,\x00y\n3,4\n")  # past the sniffing sample
    _enc, _delim, rows = records(path)
    assert rows[-2][:2] == ("error", 70002) and "NUL" in rows[-2][2]
    assert rows[-1] == (70003, 70003, ["3", "4"])


def test_separators_and_encodings_are_named_in_the_readers_language():
    # The preview's "Detected: UTF-8, semicolon" and its separator list said "semicolon" in Russian.
    from webapp import i18n
    from webapp.imports.reader import delimiter_label, encoding_label

    with i18n.language("ru"):
        assert [delimiter_label(d) for d in (",", ";", "\t", "|")] == [
            "запятая",
            "точка с запятой",
            "табуляция",
            "вертикальная черта",
        ]
        assert encoding_label("utf-8-sig") == "UTF-8 (с BOM)" and encoding_label("cp1251") == "Windows-1251"
    with i18n.language("vi"):
        assert delimiter_label(";") == "dấu chấm phẩy" and encoding_label("utf-8-sig") == "UTF-8 (có BOM)"
    with i18n.language("en"):
        assert delimiter_label(";") == "semicolon"
