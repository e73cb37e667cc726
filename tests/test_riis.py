"""US-RIIS parsing, GBIF name resolution through the loopback stand-in, annotated file and report.

GBIF_TABLE and MASTER_LIST are shared with test_annotate_riis.py (the task end to end).
"""

from __future__ import annotations

import csv
import io
import json
import threading

import pytest

from bisonflow.gbif.species_api import (
    GbifApiError,
    GbifClient,
    NameQuery,
    interpret_match,
    resolve_all,
)
from bisonflow.local.gbif_standin import STALL, GbifStandin, accepted_match
from bisonflow.riis.columns import ANNOTATED_COLUMNS, RIIS_COLUMNS
from bisonflow.riis.master_list import (
    REPORT_COLUMNS,
    RiisFormatError,
    annotated_csv,
    decode,
    parse_riis,
    report_csv,
)

INVASIVE = "invasive (category D2)"


GBIF_TABLE = {
    "Mentha X piperita": accepted_match(200, "Mentha ×piperita L."),
    "Festuca rubra": accepted_match(300, "Festuca rubra L."),
    # A synonym without the accepted name: the client looks it up by key (/species/300).
    "Festuca rubra ssp. fallax": accepted_match(
        301,
        "Festuca rubra subsp. fallax (Thuill.) Nyman",
        rank="SUBSPECIES",
        status="SYNONYM",
        synonym=True,
        acceptedUsageKey=300,
        speciesKey=300,
    ),
    "Aira caryophyllea var. caryophyllea": accepted_match(
        100, "Aira caryophyllea var. caryophyllea", rank="VARIETY", speciesKey=99
    ),
    # A synonym that names its accepted taxon.
    "Eichhornia crassipes": accepted_match(
        401,
        "Eichhornia crassipes (Mart.) Solms",
        status="SYNONYM",
        synonym=True,
        acceptedUsageKey=400,
        accepted="Pontederia crassipes Mart.",
    ),
    "Banana bunchy top virus": accepted_match(
        8, "Viruses", "Viruses", rank="KINGDOM", matchType="HIGHERRANK", confidence=90
    ),
    "Lythrum salicara": accepted_match(
        500, "Lythrum salicaria L.", matchType="FUZZY", confidence=92
    ),
    "Quaxylon dubium": accepted_match(
        510, "Quaxylon dubium Raf.", status="DOUBTFUL", confidence=96
    ),
    # Listed as a plant, but GBIF's only "Bellis perennis" here is an animal: a homonym.
    "Bellis perennis": accepted_match(520, "Bellis perennis Smith, 1900", "Animalia"),
    # Homonyms told apart by authorship: a plant genus and an animal genus named alike.
    "Oenanthe aquatica": accepted_match(530, "Oenanthe aquatica (L.) Poir."),
    "Oenanthe aquatica Gray, 1850": accepted_match(531, "Oenanthe aquatica Gray, 1850", "Animalia"),
    # The names of REAL_ROWS.
    "Alliaria petiolata": accepted_match(3049319, "Alliaria petiolata (M.Bieb.) Cavara & Grande"),
    "Rhinocyllus conicus": accepted_match(
        1178851, "Rhinocyllus conicus (Frölich, 1792)", "Animalia"
    ),
    "Euphorbia esula": accepted_match(3071297, "Euphorbia esula L."),
}


def _row(locality: str, name: str, kingdom: str = "Plantae", **extra: str) -> str:
    values = dict.fromkeys(RIIS_COLUMNS, "")
    values.update(locality=locality, scientificName=name, kingdom=kingdom)
    values["degreeOfEstablishment"] = "established (category C3)"
    values.update(extra)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([values[c] for c in RIIS_COLUMNS])
    return out.getvalue().removesuffix("\n")


HEADER = ",".join(RIIS_COLUMNS)
AUTHOR = "scientificNameAuthorship"

# line 1 header; lines 2.. data. Line 5's remark spans lines 5-6; line 7 is blank.
MASTER_LIST = "\n".join(
    [
        HEADER,
        _row("L48", "Mentha X piperita", occurrenceID="riis-1", isHybrid="TRUE"),  # 2
        _row("AK", "Mentha X piperita", occurrenceID="riis-2", isHybrid="TRUE"),  # 3 same triple
        _row("HI", "Festuca rubra ssp. fallax", occurrenceID="riis-3"),  # 4 synonym, lookup
        _row("L48", "Aira caryophyllea var. caryophyllea", eventRemarks="two\r\nlines"),  # 5-6
        "",  # 7
        _row("XX", "Bad locality"),  # 8 malformed
        _row("L48", "   "),  # 9 malformed: empty scientificName
        "L48,Too few fields",  # 10 malformed
        _row("HI", "Eichhornia crassipes", degreeOfEstablishment="Invasive  (Category D2)"),  # 11
        _row("l48", "Banana  bunchy top virus", kingdom="Virus"),  # 12 no match (strict)
        _row("AK", "Nomen ignotum", kingdom="animalia"),  # 13 no match
        _row("L48", "Lythrum salicara", degreeOfEstablishment="sometimes"),  # 14 malformed
        _row("L48", "Festuca rubra ssp."),  # 15 malformed: marker without epithet
        _row("L48", "Aus bus", kingdom="Plantea"),  # 16 malformed: kingdom
        _row("L48", "Lythrum salicara", occurrenceID="riis-17"),  # 17 fuzzy: doubtful
        _row("HI", "Quaxylon dubium", occurrenceID="riis-18"),  # 18 DOUBTFUL: doubtful
        _row("L48", "Bellis perennis", occurrenceID="riis-19"),  # 19 kingdom conflict
        _row("L48", "Oenanthe aquatica", **{AUTHOR: "(L.) Poir."}),  # 20 plant
        _row("HI", "Oenanthe aquatica", "Animalia", **{AUTHOR: "Gray,  1850"}),  # 21 animal
    ]
)
#: accepted key of each RIIS line of MASTER_LIST that is kept (None: unresolved)
EXPECTED_KEYS = {2: 200, 3: 200, 4: 300, 5: 100, 11: 400, 12: None, 13: None, 17: 500}
EXPECTED_KEYS |= {18: 510, 19: None, 20: 530, 21: 531}
MALFORMED_LINES = [8, 9, 10, 14, 15, 16]
DOUBTFUL_LINES = [17, 18]


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "gbif_table.json"
    path.write_text(json.dumps(GBIF_TABLE), "utf-8")
    return path


def fast_client(base_url: str, **kwargs) -> GbifClient:
    kwargs.setdefault("backoff_seconds", 0.001)
    return GbifClient(base_url, **kwargs)


# --- parsing ---------------------------------------------------------------------------


def test_parse_reports_malformed_rows_with_line_numbers_and_reasons():
    parsed = parse_riis(MASTER_LIST)
    assert [r.line for r in parsed.records] == sorted(EXPECTED_KEYS)
    reasons = {m.line: m.reason for m in parsed.malformed}
    assert list(reasons) == MALFORMED_LINES
    assert reasons[8].startswith("locality 'XX' is not one of: AK; HI; L48")
    assert reasons[9] == "empty scientificName"
    assert reasons[10] == f"has 2 fields, the header has {len(RIIS_COLUMNS)}"
    assert reasons[14].startswith("degreeOfEstablishment 'sometimes' is not one of: established")
    assert "ends with the rank marker 'ssp.'" in reasons[15]
    assert reasons[16].startswith("kingdom 'Plantea' is not one of")


def test_parse_writes_vocabulary_and_names_in_canonical_form():
    by_line = {r.line: r.values for r in parse_riis(MASTER_LIST).records}
    assert by_line[11]["degreeOfEstablishment"] == INVASIVE
    assert by_line[12]["locality"] == "L48"
    assert by_line[12]["scientificName"] == "Banana bunchy top virus"
    assert by_line[13]["kingdom"] == "Animalia"
    assert by_line[21][AUTHOR] == "Gray, 1850"
    assert by_line[5]["eventRemarks"] == "two\nlines"


def test_parse_hybrids_infraspecific_names_and_authorship():
    by_line = {r.line: r for r in parse_riis(MASTER_LIST).records}
    assert by_line[2].query == NameQuery("Mentha X piperita", "", "Plantae")
    assert by_line[2].query == by_line[3].query  # one request for both rows
    assert [by_line[n].is_hybrid for n in (2, 4, 5)] == [True, False, False]
    assert [by_line[n].rank_marker for n in (2, 4, 5)] == ["", "ssp.", "var."]
    assert by_line[20].query != by_line[21].query
    assert by_line[21].query == NameQuery("Oenanthe aquatica", "Gray, 1850", "Animalia")
    text = f"{HEADER}\n{_row('L48', 'Reynoutria × bohemica')}\n{_row('HI', 'X Agropogon lutosus')}"
    assert [r.is_hybrid for r in parse_riis(text).records] == [True, True]


def test_parse_tolerates_bom_and_reordered_partial_header():
    text = (
        "\ufefflocality,kingdom,extraColumn,scientificName,degreeOfEstablishment\r\n"
        "HI,Plantae,x,Aus bus,widespread invasive (category E)\r\n"
    )
    for data in (text.encode("utf-8"), text.removeprefix("\ufeff").encode("utf-8-sig")):
        parsed = parse_riis(decode(data))
        assert parsed.unknown_columns == ("extraColumn",)
        (record,) = parsed.records
        assert record.line == 2
        assert record.values["scientificName"] == "Aus bus"
        assert record.values["locality"] == "HI"
        assert record.values["occurrenceID"] == ""
        assert list(record.values) == list(RIIS_COLUMNS)


def test_decode_accepts_cp1252():
    assert decode("locality\nHI,Müller".encode("cp1252")).endswith("Müller")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("locality,scientificName,degreeOfEstablishment\nHI,Aus bus,x\n", "kingdom"),
        ("locality,scientificName,kingdom\nHI,Aus bus,Plantae\n", "degreeOfEstablishment"),
        ("locality,kingdom,scientificName,kingdom\n", "duplicate"),
    ],
)
def test_parse_rejects_unusable_files(text, message):
    with pytest.raises(RiisFormatError, match=message):
        parse_riis(text)


# --- what a match means ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key", "reason"),
    [
        ("Mentha X piperita", 200, ""),
        ("Eichhornia crassipes", 400, ""),
        ("Festuca rubra ssp. fallax", 300, ""),
        ("Banana bunchy top virus", None, "GBIF matched only kingdom 'Viruses'"),
        ("Lythrum salicara", 500, "fuzzy match"),
        ("Quaxylon dubium", 510, "backbone status DOUBTFUL"),
        ("Bellis perennis", None, "in kingdom Animalia, not Plantae"),
    ],
)
def test_interpret_match_rules(name, key, reason):
    match = interpret_match(GBIF_TABLE[name], NameQuery(name, "", "Plantae"))
    assert match.key == key
    assert reason in match.reason
    assert bool(match.reason) == bool(reason)
    assert match.doubtful == (key is not None and bool(reason))
    assert match.match_type == GBIF_TABLE[name]["matchType"]


def test_interpret_match_low_confidence_genus_and_bare_synonym():
    low = interpret_match(accepted_match(1, "Aus bus", confidence=70, rank="GENUS"))
    assert low.key == 1
    assert low.reason == "confidence 70 < 90; matched rank GENUS, above species"
    orphan = interpret_match(accepted_match(2, "Aus cus", status="SYNONYM", synonym=True))
    assert (orphan.key, orphan.reason) == (None, "synonym 'Aus cus' has no accepted usage")
    none = interpret_match({"matchType": "NONE", "confidence": 100})
    assert (none.key, none.reason) == (None, "no match in the GBIF backbone")


# --- resolution over HTTP ------------------------------------------------------------------


def test_resolve_through_standin_follows_synonyms_and_sends_the_triple(table_path):
    queries = {r.query for r in parse_riis(MASTER_LIST).records}
    messages: list[str] = []
    with GbifStandin(table_path) as gbif, fast_client(gbif.base_url) as api:
        resolved = resolve_all(api, queries, concurrency=4, progress=messages.append)
        # 11 distinct triples, plus one /species/300 lookup for the nameless synonym
        assert (gbif.requests, api.calls) == (12, 12)
        sent = {p["name"] + "|" + p.get("authorship", ""): p for p in gbif.match_params}
    by_name = {(q.name, q.authorship): (m.key, m.name) for q, m in resolved.items()}
    assert by_name[("Festuca rubra ssp. fallax", "")] == (300, "Festuca rubra L.")
    assert by_name[("Eichhornia crassipes", "")] == (400, "Pontederia crassipes Mart.")
    assert by_name[("Oenanthe aquatica", "(L.) Poir.")] == (530, "Oenanthe aquatica (L.) Poir.")
    assert by_name[("Oenanthe aquatica", "Gray, 1850")][0] == 531
    assert by_name[("Banana bunchy top virus", "")] == (None, "")  # strict: NONE, not HIGHERRANK
    assert sent["Banana bunchy top virus|"]["kingdom"] == "Viruses"  # the backbone's spelling
    assert sent["Oenanthe aquatica|Gray, 1850"]["kingdom"] == "Animalia"
    assert all(p["strict"] == "true" for p in sent.values())
    assert messages[-1] == "resolved 11/11 names (100%)"


def test_429_and_503_are_retried_then_succeed(table_path):
    failures = {"Mentha X piperita": [429, 503]}
    with GbifStandin(table_path, fail_first=failures) as gbif, fast_client(gbif.base_url) as api:
        match = api.resolve(NameQuery("Mentha X piperita", "", "Plantae"))
        assert (match.key, gbif.requests, api.calls, api.retries) == (200, 3, 3, 2)


def test_a_timeout_is_retried(table_path):
    failures = {"Festuca rubra": [STALL]}
    with (
        GbifStandin(table_path, fail_first=failures, stall_seconds=1.0) as gbif,
        fast_client(gbif.base_url, timeout=(1.0, 0.3)) as api,
    ):
        assert api.resolve(NameQuery("Festuca rubra")).key == 300
        assert api.retries >= 1  # the stalled request timed out and was asked again


def test_persistent_failure_raises_naming_the_url_and_others_give_up(table_path):
    failures = {"Mentha X piperita": [503] * 10, "Festuca rubra": [503] * 10}
    queries = [NameQuery("Mentha X piperita"), NameQuery("Festuca rubra")]
    with GbifStandin(table_path, fail_first=failures) as gbif:
        with (
            fast_client(gbif.base_url, max_attempts=3) as api,
            pytest.raises(GbifApiError) as info,
        ):
            resolve_all(api, queries, concurrency=2)
        assert gbif.requests <= 6
    assert "HTTP 503" in str(info.value)
    assert "/species/match" in str(info.value)


def test_abort_stops_retries_in_other_threads(table_path):
    failures = {"Festuca rubra": [503] * 10}
    with GbifStandin(table_path, fail_first=failures) as gbif:
        api = GbifClient(gbif.base_url, backoff_seconds=5.0, max_backoff_seconds=5.0)
        errors: list[Exception] = []

        def ask() -> None:
            try:
                api.resolve(NameQuery("Festuca rubra"))
            except GbifApiError as exc:
                errors.append(exc)

        worker = threading.Thread(target=ask)
        worker.start()
        while gbif.requests == 0:
            worker.join(0.01)
        api.abort()
        worker.join(2.0)
        assert not worker.is_alive()  # gave up instead of sleeping out its backoff
        assert "aborted" in str(errors[0])
        api.close()


def test_unreachable_api_raises():
    api = fast_client("http://127.0.0.1:9/v1", max_attempts=2)
    with api, pytest.raises(GbifApiError, match="ConnectionError"):
        api.match(NameQuery("Aus bus"))


# --- annotated file and report ---------------------------------------------------------------


def _resolved(table_path):
    parsed = parse_riis(MASTER_LIST)
    with GbifStandin(table_path) as gbif, fast_client(gbif.base_url) as api:
        return parsed, resolve_all(api, {r.query for r in parsed.records})


def test_annotated_csv_keeps_every_column_and_adds_the_accepted_taxon(table_path):
    parsed, matches = _resolved(table_path)
    rows = list(csv.DictReader(io.StringIO(annotated_csv(parsed.records, matches))))
    assert tuple(rows[0]) == ANNOTATED_COLUMNS
    keys = [int(r["gbif_res_taxonkey"]) if r["gbif_res_taxonkey"] else None for r in rows]
    assert keys == [EXPECTED_KEYS[line] for line in sorted(EXPECTED_KEYS)]
    assert rows[0]["occurrenceID"] == "riis-1"
    assert rows[0]["isHybrid"] == "TRUE"
    assert rows[2]["gbif_res_scientificname"] == "Festuca rubra L."
    assert rows[3]["eventRemarks"] == "two\nlines"


def test_report_lists_malformed_unresolved_and_doubtful_lines(table_path):
    parsed, matches = _resolved(table_path)
    text = report_csv(parsed.records, matches, parsed.malformed)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == REPORT_COLUMNS
    problems = {int(r["line"]): r["problem"] for r in rows}
    unresolved = [line for line, key in EXPECTED_KEYS.items() if key is None]
    assert problems == (
        dict.fromkeys(MALFORMED_LINES, "malformed")
        | dict.fromkeys(unresolved, "unresolved")
        | dict.fromkeys(DOUBTFUL_LINES, "doubtful")
    )
    assert [int(r["line"]) for r in rows] == sorted(problems)
    fuzzy = next(r for r in rows if r["line"] == "17")
    assert fuzzy["occurrenceID"] == "riis-17"
    assert (fuzzy["matchType"], fuzzy["confidence"], fuzzy["gbif_res_taxonkey"]) == (
        "FUZZY",
        "92",
        "500",
    )
    assert fuzzy["matched_name"] == "Lythrum salicaria L."
    homonym = next(r for r in rows if r["line"] == "19")
    assert "kingdom Animalia" in homonym["reason"]
    assert homonym["gbif_res_taxonkey"] == ""


def test_report_of_a_clean_list_is_a_header():
    text = f"{HEADER}\n{_row('L48', 'Festuca rubra')}\n"
    parsed = parse_riis(text)
    matches = {parsed.records[0].query: interpret_match(GBIF_TABLE["Festuca rubra"])}
    assert report_csv(parsed.records, matches, parsed.malformed) == ",".join(REPORT_COLUMNS) + "\n"


# --- the list as USGS publishes it ---------------------------------------------------------

#: The US-RIIS v2 master list header exactly as USGS publishes it (issue 10; the seed system's
#: lifemapper/bison aws/redshift/load_annotated_riis.sql has the same 32 columns, lower-cased).
REAL_HEADER_LINE = (
    "locality,scientificName,scientificNameAuthorship,vernacularName,taxonRank,"
    "establishmentMeans,degreeOfEstablishment,isHybrid,pathway,habitat,Biocontrol,associatedTaxa,"
    "eventRemarks,IntroDateNumber,taxonRemarks,kingdom,phylum,class,order,family,taxonomicStatus,"
    "ITIS_TSN,GBIF_taxonKey,taxonID,Authority,WebLink,associatedReferences,eventDate,modified,"
    "Update_Remarks,occurrenceRemarks,occurrenceID"
)
REAL_HEADER = next(csv.reader([REAL_HEADER_LINE]))
#: Rows as the list writes them: every column filled somewhere, commas and quotes in values, a
#: remark over two lines, non-ASCII letters cp1252 can also carry.
REAL_ROWS = [
    ["L48", "Alliaria petiolata", "(M.Bieb.) Cavara & Grande", "garlic mustard", "Species",
     "introduced", "invasive (category D2)", "FALSE", "escape from confinement: horticulture",
     "terrestrial", "", "", "Approximate introduction date: 1868", "1868",
     'Listed as "Alliaria officinalis" before 2019', "Plantae", "Tracheophyta",
     "Magnoliopsida", "Brassicales", "Brassicaceae", "Accepted ITIS", "22899", "3049319",
     "https://www.itis.gov/servlet/SingleRpt/SingleRpt?search_topic=TSN&search_value=22899",
     "USDA NRCS PLANTS (2020)", "https://plants.usda.gov/", "https://plants.usda.gov/",
     "2016-03-14", "2022-08-01", "Changed reference", "Spreading quickly; shade tolerant",
     "USRIIS-L48Plantae1"],
    ["HI", "Rhinocyllus conicus", "(Frölich, 1792)", "nodding-thistle receptacle weevil",
     "Species", "introduced", "established (category C3)", "FALSE",
     "release in nature: biological control", "terrestrial", "Yes", "Carduus nutans",
     "Released 1987–1989\nfrom Montana stock", "1988", "", "Animalia", "Arthropoda",
     "Insecta", "Coleoptera", "Curculionidae", "Accepted GBIF", "", "1178851",
     "https://www.gbif.org/species/1178851", "Bishop Museum (2019)",
     "http://hbs.bishopmuseum.org/", "http://hbs.bishopmuseum.org/", "2009-07-02",
     "2021-11-30", "", "Purposely introduced as a biological control agent",
     "USRIIS-HIAnimalia2"],
    ["AK", "Euphorbia esula", "L.", "leafy spurge", "Species", "introduced",
     "widespread invasive (category E)", "FALSE", "contaminant: seed contaminant",
     "terrestrial", "", "", "", "", "", "Plantae", "Tracheophyta", "Magnoliopsida",
     "Malpighiales", "Euphorbiaceae", "Accepted ITIS", "28064", "3071297", "",
     "Alaska Natural Heritage Program, ACCS (2021)",
     "https://accs.uaa.alaska.edu/invasive-species/", "", "2012-05-20", "2022-01-10", "", "",
     "USRIIS-AKPlantae3"],
]  # fmt: skip


def real_list(header: list[str], rows: list[list[str]], line_end: str = "\r\n") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=line_end).writerows([header, *rows])
    return out.getvalue()


def test_the_projects_earlier_spellings_are_read_as_the_real_columns():
    """Redshift folds column names to lower case, so names that differ only in case are one
    column: the sample's earlier "gbif_taxonKey" is USGS's "GBIF_taxonKey"."""
    earlier = {"Biocontrol": "biocontrol", "IntroDateNumber": "introDateNumber"}
    earlier |= {"ITIS_TSN": "itis_TSN", "GBIF_taxonKey": "gbif_taxonKey"}
    earlier |= {"Authority": "authority", "Update_Remarks": "update_remarks"}
    header = [earlier.get(name, name) for name in REAL_HEADER]
    parsed = parse_riis(real_list(header, REAL_ROWS))
    assert (parsed.unknown_columns, parsed.missing_columns) == ((), ())
    values = parsed.records[1].values
    assert (values["Biocontrol"], values["GBIF_taxonKey"], values["IntroDateNumber"]) == (
        "Yes",
        "1178851",
        "1988",
    )
    assert parsed.records[0].values["Update_Remarks"] == "Changed reference"
    with pytest.raises(RiisFormatError, match="duplicate column.*GBIF_taxonKey, gbif_taxonKey"):
        parse_riis(real_list([*REAL_HEADER, "gbif_taxonKey"], []))


def _stray_quote_list() -> tuple[str, list[str]]:
    """Line 3 opens a quote before its name and never closes it; line 9 quotes its name, and
    that quote closes line 3's. With as many fields as the header, line 3 took in lines 4-9
    without a sign (issue 10). Returns the text and the names on lines 4-10."""
    names = ["Sus scrofa", "Rattus rattus", "Felis catus", "Cyprinus carpio", "Apis mellifera"]
    lines = [_row("L48", "Festuca rubra"), _row("L48", "Bromus tectorum").replace(",", ',"', 1)]
    lines += [_row("HI", name, "Animalia") for name in names]
    starling = "Sturnus vulgaris"
    lines += [_row("AK", starling, "Animalia").replace(starling, f'"{starling}"')]
    lines += [_row("L48", "Pueraria montana")]
    return "\n".join([HEADER, *lines]) + "\n", [*names, starling, "Pueraria montana"]


def test_an_unclosed_quote_is_reported_where_it_opened_and_later_rows_are_read():
    text, later_names = _stray_quote_list()
    parsed = parse_riis(text)
    (bad,) = parsed.malformed
    assert bad.line == 3
    assert bad.reason == (
        "unclosed quote: the quoted field opened on line 3 runs to line 9 and takes in 6 whole "
        "row(s) (lines 4, 5, 6, 7, 8 and 1 more); the lines after line 3 are read as rows"
    )
    assert [r.line for r in parsed.records] == [2, 4, 5, 6, 7, 8, 9, 10]
    assert [r.values["scientificName"] for r in parsed.records[1:]] == later_names
    matches = {r.query: interpret_match({"matchType": "NONE"}) for r in parsed.records}
    report = list(csv.DictReader(io.StringIO(report_csv(parsed.records, matches, [bad]))))
    assert (report[1]["line"], report[1]["problem"]) == ("3", "malformed")


def test_a_quote_that_runs_to_the_end_or_past_the_field_limit_is_reported():
    ending = f'{HEADER}\n{_row("L48", "Festuca rubra")}\nL48,"Aus bus,\n(continued)\n'
    parsed = parse_riis(ending)
    assert [(m.line, m.reason[:60]) for m in parsed.malformed] == [
        (3, "unclosed quote: the quoted field opened on line 3 runs to th"),
        (4, f"has 1 fields, the header has {len(RIIS_COLUMNS)}"),
    ]
    assert "runs to the end of the file" in parsed.malformed[0].reason
    # A runaway quote in a list of thousands of rows outgrows the csv module's field limit.
    text, later_names = _stray_quote_list()
    default_limit = csv.field_size_limit(400)
    try:
        parsed = parse_riis(text)
    finally:
        csv.field_size_limit(default_limit)
    (bad,) = parsed.malformed
    assert (bad.line, bad.reason) == (
        3,
        "unclosed quote: the quoted field opened on line 3 is never closed (field larger than "
        "field limit (400)); the lines after line 3 are read as rows",
    )
    assert [r.values["scientificName"] for r in parsed.records[1:]] == later_names
