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


# -- line separators, limits, nesting -------------------------------------------------------------
@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_jsonl_with_unicode_line_separators_inside_strings_imports(tmp_path, separator):
    first = {"id": "a", "kind": "cluster", "name": f"A{separator}B", "country": "PT", "description": f"one{separator}two"}
    second = {"id": "b", "kind": "cluster", "name": "B", "country": "XX", "description": "x"}
    path = write(tmp_path / "x.jsonl", json.dumps(first, ensure_ascii=False) + "\r\n" + json.dumps(second) + "\n")
    assert separator in path.read_text(encoding="utf-8")  # raw in the file, as JSON allows
    with pytest.raises(CorpusError) as exc:
        load_records(path)
    assert [(e.line, e.field) for e in exc.value.errors] == [(2, "country")]  # lines counted by line feeds
    rec = load_records(path, skip_invalid=True).records[0]
    assert rec.name == f"A{separator}B" and rec.description == f"one{separator}two"


def test_csv_with_unicode_line_separators_in_cells(tmp_path):
    path = write(tmp_path / "x.csv", "id,kind,name,country,description\na,cluster,A\u2028B,PT,x\u2029y\nb,cluster,B,PT,z\n")
    assert [(r.name, r.description) for r in load_records(path).records] == [("A\u2028B", "x\u2029y"), ("B", "z")]


LANGS = ["pt", "zh", "fr", "de", "es", "it", "ja", "ko", "ru", "ar", "nl", "sv", "pl", "tr", "vi", "th"]
BASE = {"id": "a", "kind": "cluster", "name": "A", "country": "PT", "description": "x", "lang": "en"}


@pytest.mark.parametrize("extra, field, words", [
    ({"i18n": {code: {"name": code} for code in LANGS}}, "i18n", "17 languages"),  # en + 16 translations
    ({"i18n": {code: {"name": code} for code in LANGS + ["uk"]}}, "i18n", "at most 16 languages"),
    ({"lang": "fr", "i18n": {code: {"name": code} for code in LANGS[3:] + ["uk"]}}, "i18n", "at most 13 besides"),
    ({"region": "R" * 200_000}, "region", "at most 100 characters"),
    ({"city": "C" * 101}, "city", "at most 100 characters"),
    ({"sectors": ["moulds", "s" * 101]}, "sectors.1", "at most 100 characters"),
    ({"sectors": [f"tag{i}" for i in range(31)]}, "sectors", "at most 30 items"),
    ({"sectors": ";".join("t" * 99 for _ in range(40))}, "sectors", "at most"),
    ({"sources": ["https://example.org/" + "p" * 2000]}, "sources.0", "at most 2000 characters"),
    ({"sources": [f"https://example.org/{i}" for i in range(31)]}, "sources", "at most 30 items"),
    ({"website": "https://example.org/" + "p" * 2000}, "website", "at most 2000 characters"),
    ({"name": "N" * 301}, "name", "at most 300 characters"),
    ({"offers": "o" * 2001}, "offers", "at most 2000 characters"),
    ({"note": "n" * 2001}, "note", "longer than 2000 characters"),
    ({"note": [[[[["deep"]]]]]}, "note", "nested deeper than 4 levels"),
    ({"note": list(range(201))}, "note", "more than 200 values"),
    ({"k" * 101: 1}, "k" * 101, "longer than 100 characters"),
    ({f"extra_{i}": i for i in range(31)}, "-", "more than 30 extra fields"),
    ({"i18n": {"zh": {"name": "名", "note": {"a": {"b": {"c": {"d": [1]}}}}}}}, "i18n.zh.note", "nested deeper"),
])
def test_limits_name_the_field(tmp_path, extra, field, words):
    path = write(tmp_path / "x.jsonl", "\n" + json.dumps({**BASE, **extra}) + "\n")
    with pytest.raises(CorpusError) as exc:
        load_records(path)
    err = exc.value.errors[0]
    assert (err.line, err.field) == (2, field), err
    assert words in err.message, err.message


def test_records_at_the_limits_import(tmp_path):
    rec = {**BASE, "region": "R" * 100, "sectors": [f"tag{i}" for i in range(30)], "note": [{"a": ["b"]}],
           "i18n": {code: {"name": code} for code in LANGS[:15]}}
    assert load_records(write(tmp_path / "x.jsonl", json.dumps(rec) + "\n")).records[0].region == "R" * 100


def test_json_nested_deeper_than_the_parser_goes_is_a_line_error(tmp_path):
    deep = '{"id": "a", "kind": "cluster", "name": "A", "country": "PT", "description": "x", "note": ' + "[" * 10_000 + "]" * 10_000 + "}"
    path = write(tmp_path / "x.jsonl", json.dumps(BASE) + "\n" + deep + "\n")
    with pytest.raises(CorpusError) as exc:
        load_records(path)
    assert [(e.line, e.field, e.message) for e in exc.value.errors] == [(2, "-", "JSON nested too deeply")]


def test_offers_and_seeks_in_a_language_and_what_lacks_a_translation():
    from corpus import Organisation

    rec = Organisation.model_validate({"id": "a", "kind": "company", "name": "A", "country": "PT", "lang": "pt",
                                       "description": "Moldes.", "offers": "Moldes de injeção.", "seeks": "Parceiros.",
                                       "i18n": {"en": {"description": "Moulds.", "offers": "Injection moulds.", "machine": ["offers"]}}})
    assert rec.field_in("offers", "en") == ("Injection moulds.", "en")
    assert rec.field_in("seeks", "en") == ("Parceiros.", "pt")  # the original, with its language
    assert rec.field_in("offers", "pt") == ("Moldes de injeção.", "pt")
    assert rec.untranslated() == ["description:zh", "offers:zh", "seeks:zh", "seeks:en"]
    assert rec.i18n["en"].machine == ["offers"]
