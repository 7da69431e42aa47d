"""Importers: JSONL and CSV, validation errors with file, line and field, skip-invalid."""

import json

import pytest

from corpus import CorpusError, Organisation, load_records

from conftest import DATA


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_jsonl_loads_fictional_records():
    res = load_records(DATA / "fictional.jsonl")
    assert [r.id for r in res.records][:2] == ["test-mould-works", "test-cork-lab"]
    cork = res.records[1]
    assert cork.sectors == ["cork"]  # Portuguese tag linked to the taxonomy slug
    shoes = res.records[2]
    assert shoes.sectors == ["footwear", "leather goods"]  # unknown tag kept, not rejected
    ev = res.records[3]
    assert ev.lang == "zh"  # detected when absent
    assert ev.extra_fields() == {"founded_note": "extra field kept"}  # unknown fields kept


def test_error_names_file_line_and_field(tmp_path):
    good = json.dumps({"id": "a-b", "kind": "cluster", "name": "A", "country": "PT", "description": "x"})
    bad = json.dumps({"id": "c-d", "kind": "factory", "name": "C", "country": "PT", "description": "y"})
    path = write(tmp_path / "orgs.jsonl", good + "\n\n" + bad + "\n")
    with pytest.raises(CorpusError) as exc:
        load_records(path)
    (err,) = exc.value.errors
    assert (err.line, err.field) == (3, "kind")
    assert str(err).startswith(f"{path}:3: kind: ")
    assert "cluster" in err.message  # says what is allowed


@pytest.mark.parametrize(
    "record, field, words",
    [
        ({"kind": "cluster", "name": "A", "country": "PT", "description": "x"}, "id", "Field required"),
        ({"id": "Bad Id", "kind": "cluster", "name": "A", "country": "PT", "description": "x"}, "id", "slug"),
        ({"id": "a", "kind": "cluster", "name": "A", "country": "PRT", "description": "x"}, "country", "ISO 3166-1"),
        ({"id": "a", "kind": "cluster", "name": "A", "country": "PT", "description": ""}, "description", "at least 1"),
        ({"id": "a", "kind": "cluster", "name": "A", "country": "PT", "description": "x", "website": "ftp://x"}, "website", "http"),
        ({"id": "a", "kind": "cluster", "name": "A", "country": "PT", "description": "x", "sources": ["nope"]}, "sources", "URL"),
        ({"id": "a", "kind": "cluster", "name": "A", "country": "PT", "description": "x", "updated": "yesterday"}, "updated", "date"),
        ({"id": "a", "kind": "cluster", "name": "A", "country": "PT", "description": "x", "i18n": {"chinese": {}}}, "i18n", "language code"),
    ],
)
def test_each_invalid_field_is_named(tmp_path, record, field, words):
    path = write(tmp_path / "x.jsonl", json.dumps(record) + "\n")
    with pytest.raises(CorpusError) as exc:
        load_records(path)
    err = exc.value.errors[0]
    assert err.line == 1 and err.field.startswith(field), err
    assert words.lower() in err.message.lower(), err.message


def test_bad_json_and_duplicates(tmp_path):
    rec = {"id": "a", "kind": "cluster", "name": "A", "country": "PT", "description": "x"}
    path = write(tmp_path / "x.jsonl", json.dumps(rec) + "\n{not json\n" + json.dumps(rec) + "\n[1]\n")
    with pytest.raises(CorpusError) as exc:
        load_records(path)
    errs = {e.line: e for e in exc.value.errors}
    assert "not valid JSON" in errs[2].message
    assert errs[3].field == "id" and "duplicate id 'a' (first on line 1)" in errs[3].message
    assert "one JSON object" in errs[4].message


def test_skip_invalid_imports_the_rest(tmp_path):
    good = {"id": "a", "kind": "cluster", "name": "A", "country": "PT", "description": "x"}
    bad = dict(good, id="b", country="Portugal")
    path = write(tmp_path / "x.jsonl", json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    res = load_records(path, skip_invalid=True)
    assert [r.id for r in res.records] == ["a"]
    assert [(e.line, e.field) for e in res.skipped] == [(2, "country")]


def test_csv_with_bom_lists_and_translations(tmp_path):
    text = (
        "id,kind,name,country,region,sectors,description,name_zh,description_zh,sources,note\n"
        'csv-one,company,Moldes Um,PT,Centro,"moldes; plásticos",Fabrica moldes,模具一,生产模具,https://example.org/a,hello\n'
        'csv-two,cluster,"Two, Ltd",CN,Zhejiang,模具,"Line one\nline two",,,,\n'
    )
    path = write(tmp_path / "orgs.csv", "\ufeff" + text)
    recs = load_records(path).records
    one, two = recs
    assert one.sectors == ["moulds", "plastics"]
    assert one.i18n["zh"].name == "模具一" and one.sources == ["https://example.org/a"]
    assert one.extra_fields() == {"note": "hello"}
    assert two.name == "Two, Ltd" and two.sectors == ["moulds"] and "line two" in two.description


def test_csv_error_line_counts_multiline_cells(tmp_path):
    text = (
        "id,kind,name,country,description\n"
        'a,cluster,A,PT,"multi\nline"\n'
        "b,cluster,B,XX,desc\n"
    )
    path = write(tmp_path / "orgs.csv", text)
    with pytest.raises(CorpusError) as exc:
        load_records(path)
    err = exc.value.errors[0]
    assert (err.line, err.field) == (4, "country")


def test_csv_extra_cells_and_non_utf8(tmp_path):
    path = write(tmp_path / "orgs.csv", "id,kind,name,country,description\na,cluster,A,PT,d,surplus\n")
    with pytest.raises(CorpusError, match="2 - :|header has 5 columns"):
        load_records(path)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"id": "a", "name": "Cortiça"}\n'.encode("latin-1"))
    with pytest.raises(CorpusError, match="not valid UTF-8"):
        load_records(latin)


def test_unsupported_and_missing_files(tmp_path):
    with pytest.raises(CorpusError, match="file not found"):
        load_records(tmp_path / "none.jsonl")
    with pytest.raises(CorpusError, match="unsupported file type"):
        load_records(write(tmp_path / "x.xml", "<x/>"))


def test_versions_and_translations():
    rec = Organisation.model_validate(
        {"id": "a", "kind": "cluster", "name": "Pólo", "country": "pt", "lang": "pt", "description": "Descrição",
         "i18n": {"zh": {"name": "极", "description": "说明"}, "en": {"name": "Pole"}}}
    )
    assert rec.country == "PT"
    assert set(rec.versions()) == {"pt", "zh", "en"}
    assert rec.name_in("zh") == "极" and rec.name_in("fr") == "Pólo"
    assert rec.description_in("en") == ("Descrição", "pt")  # no English description: original, marked
