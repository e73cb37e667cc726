"""New this month: listed species recorded in a county where the previous published month had
no record of them, and the counties that gained or lost listed species, by RIIS tier.

calc_stats runs end to end against moto's in-process S3 (helpers of test_provenance), for a
first month and for a second month after a published one; the CSV tables, the marker and
the step output are read back.
"""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_calc_stats import s3  # noqa: F401 (the fixture: a bucket in moto's S3)
from test_provenance import COUNTY_ROWS, LAYOUT, body, publish_citation, spec, upload_month

from bisonflow.dimensions import PRESUMED_NATIVE, SPECIES_KEY
from bisonflow.graphics.figures import changes_figure
from bisonflow.layout import MonthLayout
from bisonflow.stats import changes
from bisonflow.stats.changes import LISTED
from tasks import calc_stats

#: The tables and record are what these tests read; the images are test_figures' and test_maps'.
pytestmark = pytest.mark.usefixtures("without_images")

JANUARY = LAYOUT.previous
#: January: Autauga and Hawaii as in February, Barbour (gone in February), no Baldwin.
JANUARY_ROWS = [row for row in COUNTY_ROWS if row[0] != "01003"] + [
    ("01005", "AL", "Barbour County", "3001", "Species 3001", LISTED[0], 1)
]
#: February: COUNTY_ROWS (Baldwin new for 3001) and 5003 newly in Honolulu.
FEBRUARY_ROWS = [
    *COUNTY_ROWS,
    ("15003", "HI", "Honolulu County", "5003", "Species 5003", LISTED[-1], 1),
]


def rows(s3, key: str) -> list[dict[str, str]]:  # noqa: F811
    return list(csv.DictReader(io.StringIO(body(s3, key).decode())))


def header(s3, key: str) -> list[str]:  # noqa: F811
    return next(csv.reader(io.StringIO(body(s3, key).decode())))


def run_february(s3) -> tuple[dict, dict]:  # noqa: F811
    upload_month(s3, LAYOUT, FEBRUARY_ROWS)
    result = calc_stats.run(spec(s3, gbif_citation=publish_citation(s3)))
    return result, json.loads(body(s3, LAYOUT.done_marker_key))


def test_the_first_month_says_there_is_no_earlier_month(s3):  # noqa: F811
    upload_month(s3, JANUARY, JANUARY_ROWS)  # January's tables, but January never finished
    result, marker = run_february(s3)

    reason = (
        "no earlier month: no month before 2024-02 was published (no summary/<YYYY_MM_DD>/"
        f"_SUCCESS before summary/2024_02_01/_SUCCESS in s3://{s3.bucket})"
    )
    assert marker["changes"] == result["changes"] == {"previous_month": None, "reason": reason}
    assert rows(s3, LAYOUT.new_in_county_key) == []
    assert header(s3, LAYOUT.new_in_county_key) == [*changes.LABELS, "occ_count"]
    assert rows(s3, LAYOUT.county_changes_key) == []
    assert header(s3, LAYOUT.county_changes_key) == list(changes.CHANGE_COLUMNS)
    assert body(s3, LAYOUT.new_this_month_figure_key).startswith(b"\x89PNG\r\n\x1a\n")
    for key in (LAYOUT.new_in_county_key, LAYOUT.county_changes_key):
        assert key in marker["files"]


def test_a_listed_species_in_a_new_county_is_reported_by_tier(s3):  # noqa: F811
    upload_month(s3, JANUARY, JANUARY_ROWS)
    s3.put_object(Bucket=s3.bucket, Key=JANUARY.done_marker_key, Body=b"{}")
    result, marker = run_february(s3)

    assert rows(s3, LAYOUT.new_in_county_key) == [
        {
            "geoid": "01003",
            "state": "AL",
            "county": "Baldwin County",
            "specieskey": "3001",
            "species": "Species 3001",
            "riis_assessment": LISTED[0],
            "occ_count": "2",
        },
        {
            "geoid": "15003",
            "state": "HI",
            "county": "Honolulu County",
            "specieskey": "5003",
            "species": "Species 5003",
            "riis_assessment": LISTED[-1],
            "occ_count": "1",
        },
    ]
    assert rows(s3, LAYOUT.county_changes_key) == [
        {"geoid": "01003", "state": "AL", "county": "Baldwin County",
         "riis_assessment": LISTED[0], "gained": "1", "lost": "0"},
        {"geoid": "01005", "state": "AL", "county": "Barbour County",
         "riis_assessment": LISTED[0], "gained": "0", "lost": "1"},
        {"geoid": "15003", "state": "HI", "county": "Honolulu County",
         "riis_assessment": LISTED[-1], "gained": "1", "lost": "0"},
    ]  # fmt: skip
    by_tier = {tier: 0 for tier in LISTED} | {LISTED[0]: 1} | {LISTED[-1]: 1}
    assert (
        marker["changes"]
        == result["changes"]
        == {
            "previous_month": "2024-01",
            "new_county_records": by_tier,
            "lost_county_records": 1,
            "counties_gained": 2,
            "counties_lost": 1,
        }
    )
    figure = body(s3, LAYOUT.new_this_month_figure_key)
    assert figure.startswith(b"\x89PNG\r\n\x1a\n") and len(figure) > 10_000


def test_a_month_after_a_gap_compares_with_the_last_published_month(s3):  # noqa: F811
    """January published, February never finished (tables, no marker): March is compared
    with January, so nothing recorded during the gap goes unreported."""
    march = MonthLayout.for_month("2024-03")
    upload_month(s3, JANUARY, JANUARY_ROWS)
    s3.put_object(Bucket=s3.bucket, Key=JANUARY.done_marker_key, Body=b"{}")
    upload_month(s3, LAYOUT, FEBRUARY_ROWS)  # February's tables, no _SUCCESS
    upload_month(s3, march, FEBRUARY_ROWS)
    result = calc_stats.run(spec(s3, march, gbif_citation=publish_citation(s3, layout=march)))

    assert result["changes"]["previous_month"] == "2024-01"
    assert [r["geoid"] for r in rows(s3, march.new_in_county_key)] == ["01003", "15003"]


def test_a_previous_month_published_with_taxonkey_is_compared_by_it_and_says_so(s3):  # noqa: F811
    """January was published before species were keyed by specieskey: its county list has
    `taxonkey`, read as the species column; the comparison works and its summary says the
    first comparison may list species whose old key was a subspecies' or synonym's."""
    upload_month(s3, JANUARY, JANUARY_ROWS)
    key = f"{JANUARY.species_counts_prefix('county')}0000_part_00.parquet"
    part = pq.read_table(io.BytesIO(body(s3, key)))
    old_names = ["taxonkey" if n == SPECIES_KEY else n for n in part.column_names]
    sink = io.BytesIO()
    pq.write_table(part.rename_columns(old_names), sink)
    s3.put_object(Bucket=s3.bucket, Key=key, Body=sink.getvalue())
    s3.put_object(Bucket=s3.bucket, Key=JANUARY.done_marker_key, Body=b"{}")
    result, marker = run_february(s3)

    assert result["changes"]["note"] == marker["changes"]["note"] == changes.LEGACY_NOTE
    assert "taxonkey" in changes.LEGACY_NOTE and "subspecies" in changes.LEGACY_NOTE
    assert [r["geoid"] for r in rows(s3, LAYOUT.new_in_county_key)] == ["01003", "15003"]
    assert result["changes"]["lost_county_records"] == 1
    assert header(s3, LAYOUT.new_in_county_key) == [*changes.LABELS, "occ_count"]


def test_a_month_keyed_by_specieskey_has_no_note():
    same = table(FEBRUARY_ROWS)
    assert "note" not in changes.compare(same, same, "2024-01").summary()


def table(rows: list[tuple]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    data = {name: pa.array(columns[i], pa.string()) for i, name in enumerate(changes.LABELS)}
    return pa.table(data | {"occ_count": pa.array(columns[-1], pa.int64())})


@pytest.mark.parametrize("earlier_label", ["introduced", LISTED[0]])
def test_a_loss_keeps_the_label_the_previous_month_published(earlier_label):
    """A month published before a change of the list's vocabulary still has its listed
    rows compared: any assessment but presumed native is a listing."""
    previous = table(
        [
            ("01001", "AL", "Autauga County", "3001", "Species 3001", earlier_label, 4),
            ("01001", "AL", "Autauga County", "2002", "Species 2002", PRESUMED_NATIVE, 4),
        ]
    )
    found = changes.compare(previous.slice(0, 0), previous, "2024-01")
    assert found.lost_records["riis_assessment"].to_pylist() == [earlier_label]
    assert found.new_records.num_rows == 0
    assert found.summary()["counties_lost"] == 1


def test_a_pair_recorded_before_as_presumed_native_is_not_new():
    """Recorded before is recorded before: a species newly listed where it already had
    records is not a first record there."""
    before = table([("01001", "AL", "Autauga County", "3001", "Species 3001", PRESUMED_NATIVE, 1)])
    now = table([("01001", "AL", "Autauga County", "3001", "Species 3001", LISTED[-1], 1)])
    assert changes.compare(now, before, "2024-01").new_records.num_rows == 0


def test_a_month_without_change_reports_zero_and_still_draws():
    """The same snapshot twice (a re-run, or a month in which nothing changed): nothing new,
    nothing lost, and the figure is drawn with nothing in it."""
    same = table(FEBRUARY_ROWS)
    found = changes.compare(same, same, "2024-01")
    assert found.summary() == {
        "previous_month": "2024-01",
        "new_county_records": dict.fromkeys(LISTED, 0),
        "lost_county_records": 0,
        "counties_gained": 0,
        "counties_lost": 0,
    }
    assert found.county_changes.num_rows == 0
    assert changes_figure(found, "2024-02").startswith(b"\x89PNG\r\n\x1a\n")
