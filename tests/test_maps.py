"""The maps: drawn by calc_stats from the month's tables; real non-blank PNGs with their
titles and labelled colour scales, counties without records in grey, and Alaska, Hawaii and
Puerto Rico as insets clear of the lower 48."""

from __future__ import annotations

import numpy as np
import pytest
from test_calc_stats import (
    DONE_KEY,
    MAPS,
    SUMMARY,
    read_parquet,
    s3,  # noqa: F401 (the fixture: a bucket in moto's S3)
    spec,
    upload,
)
from test_figures import MONTH, assert_drawn

from bisonflow.graphics import figures, maps
from bisonflow.graphics.shapefile import Polygons
from bisonflow.layout import COUNTY_SHAPEFILE_KEY
from tasks import calc_stats


def square(lon: float, lat: float, size: float = 1.0) -> list[np.ndarray]:
    """One clockwise ring, as a shapefile stores an outer ring."""
    return [
        np.array(
            [(lon, lat), (lon, lat + size), (lon + size, lat + size), (lon + size, lat), (lon, lat)]
        )
    ]


#: Counties across the lower 48, one each in AK (an Aleutian one east of the antimeridian),
#: HI and PR, and one in Guam, which the maps leave out.
COUNTIES = {
    "06037": ("CA", square(-118.5, 34.0)),
    "17031": ("IL", square(-88.0, 41.7)),
    "25025": ("MA", square(-71.2, 42.2)),
    "48201": ("TX", square(-95.6, 29.6)),
    "02016": ("AK", square(178.0, 51.5)),
    "02090": ("AK", square(-148.0, 64.5)),
    "15003": ("HI", square(-158.3, 21.2, 0.5)),
    "72127": ("PR", square(-66.2, 18.3, 0.2)),
    "66010": ("GU", square(144.6, 13.3, 0.2)),
}


@pytest.fixture(scope="module")
def counties() -> maps.CountyMap:
    states = [s for s, _ in COUNTIES.values()]
    attributes = {"GEOID": list(COUNTIES), "STUSPS": states}
    return maps.county_map(Polygons([r for _, r in COUNTIES.values()], attributes))


def drawn_figure(monkeypatch: pytest.MonkeyPatch, draw) -> tuple[bytes, object]:
    """The PNG and the Figure it was rendered from."""
    seen = {}

    def keep(fig):
        seen["fig"] = fig
        return figures._png(fig)

    monkeypatch.setattr(maps, "_png", keep)
    return draw(), seen["fig"]


def texts(fig) -> set[str]:
    found = {t.get_text() for t in fig.texts}
    for ax in fig.axes:
        found |= {ax.get_title(), ax.get_ylabel()} | {t.get_text() for t in ax.texts}
    return found


def test_guam_is_left_out_and_the_rest_projected(counties: maps.CountyMap) -> None:
    assert counties.geoids == [g for g, (s, _) in COUNTIES.items() if s != "GU"]


def test_insets_lie_below_and_clear_of_the_lower_48(counties: maps.CountyMap) -> None:
    boxes = {
        g: (p.vertices.min(axis=0), p.vertices.max(axis=0))
        for g, p in zip(counties.geoids, counties.paths, strict=True)
    }
    lowest_mainland = min(boxes[g][0][1] for g in ("06037", "17031", "25025", "48201"))
    for geoid in ("02016", "02090", "15003", "72127"):
        assert boxes[geoid][1][1] < lowest_mainland, geoid
    # Both Alaskan counties, either side of the antimeridian, are in the Alaska inset.
    # (34 degrees of longitude apart at scale 0.35: about 0.75e6 m on the map, not across it.)
    assert abs(boxes["02016"][0][0] - boxes["02090"][0][0]) < 1.0e6
    assert all(-2.5e6 < boxes[g][0][0] < boxes[g][1][0] < -1.2e6 for g in ("02016", "02090"))
    # Puerto Rico is shown twice its size: 0.2 degrees is about 21 km, drawn about 42 km.
    width = boxes["72127"][1][0] - boxes["72127"][0][0]
    assert width == pytest.approx(2 * 0.2 * 111_320 * np.cos(np.radians(18.4)), rel=0.05)


def test_richness_per_county_map(monkeypatch, counties) -> None:
    richness = {"06037": 40.0, "17031": 12.0, "02090": 3.0, "15003": 20.0, "72127": 8.0}
    png, fig = drawn_figure(
        monkeypatch, lambda: maps.richness_per_county(counties, richness, MONTH)
    )
    assert_drawn(png)
    found = texts(fig)
    assert f"Species richness per county, GBIF snapshot {MONTH}" in found
    assert {"species present (alpha)", "grey: no records", "Hawaii"} <= found
    assert {"Alaska (scale 0.35)", "Puerto Rico (scale 2)"} <= found
    (patches,) = fig.axes[0].collections
    colours = patches.get_facecolors()
    grey = np.array([0.851, 0.851, 0.851, 1.0])
    no_records = [i for i, g in enumerate(counties.geoids) if g not in richness]
    assert no_records and all(np.allclose(colours[i], grey, atol=1e-2) for i in no_records)
    assert not any(
        np.allclose(colours[i], grey, atol=1e-2) for i in range(len(colours)) if i not in no_records
    )


def test_listed_share_map_has_a_panel_per_tier_on_one_scale(monkeypatch, counties) -> None:
    shares = {
        "established": {"06037": 0.1, "17031": 0.0},
        "invasive": {"06037": 0.2, "17031": 0.05},
        "widespread invasive": {"06037": 0.1, "17031": 0.0},
    }
    png, fig = drawn_figure(
        monkeypatch, lambda: maps.listed_share_per_county(counties, shares, MONTH)
    )
    assert_drawn(png)
    found = texts(fig)
    assert f"Species listed in US-RIIS per county, by tier, GBIF snapshot {MONTH}" in found
    assert {
        "all listed tiers",
        "established (category C3)",
        "invasive (category D2)",
        "widespread invasive (category E)",
        "share of the county's species listed in US-RIIS for its region",
    } <= found
    panels = [ax.collections[0] for ax in fig.axes if ax.get_title()]
    assert len(panels) == 4
    assert [(p.norm.vmin, p.norm.vmax) for p in panels] == [(0.0, pytest.approx(0.4))] * 4
    assert panels[0].get_array()[0] == pytest.approx(0.4)  # the sum of the tiers
    for ax in fig.axes:  # each panel's title above its (equal-aspect, shrunk) map, not on it
        if ax.get_title():
            map_top = ax.get_window_extent().y1
            assert map_top < ax.title.get_window_extent().y0 < map_top + 20


def test_richness_per_state_colours_each_county_by_its_state(monkeypatch, counties) -> None:
    png, fig = drawn_figure(
        monkeypatch,
        lambda: maps.richness_per_state(counties, {"AK": 10.0, "CA": 50.0, "TX": 50.0}, MONTH),
    )
    assert_drawn(png)
    assert f"Species richness per state, GBIF snapshot {MONTH}" in texts(fig)
    assert "species present in the state" in texts(fig)
    values = fig.axes[0].collections[0].get_array()
    by_geoid = dict(zip(counties.geoids, values, strict=True))
    assert by_geoid["02016"] == by_geoid["02090"] == 10.0
    assert by_geoid["06037"] == by_geoid["48201"] == 50.0
    assert np.ma.is_masked(by_geoid["17031"])


def test_maps_without_data_still_render(counties) -> None:
    for png in (
        maps.richness_per_county(counties, {}, MONTH),
        maps.listed_share_per_county(counties, {}, MONTH),
        maps.richness_per_state(counties, {}, MONTH),
    ):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_maps_are_drawn_from_the_month_s_tables(s3, monkeypatch):  # noqa: F811
    """The county map gets each county's richness from its PAM, the tier map each county's
    share of species per listed tier from `county_counts`, the state map the state PAM's."""
    drawn = {}
    for name in ("richness_per_county", "listed_share_per_county", "richness_per_state"):
        real = getattr(calc_stats.maps, name)

        def record(counties, values, month, name=name, real=real):
            drawn[name] = (counties, values)
            return real(counties, values, month)

        monkeypatch.setattr(calc_stats.maps, name, record)
    upload(s3)
    calc_stats.run(spec(s3, min_presence_count=2))

    counties, richness = drawn["richness_per_county"]
    assert counties.geoids == ["01001", "01003", "01005", "02010", "15001"]
    assert counties.states == ["AL", "AL", "AL", "AK", "HI"]
    pam = read_parquet(s3, "pam_county.parquet").to_pylist()
    assert richness == {
        site: sum(1 for row in pam if row["site"] == site) for site in {row["site"] for row in pam}
    }
    _, shares = drawn["listed_share_per_county"]
    assert shares["established"]["01001"] == 0.25 and shares["invasive"]["01001"] == 0.25
    assert shares["widespread invasive"]["15001"] == 0.5
    assert shares["established"]["01003"] == 0.0 and "01005" not in shares["established"]
    _, by_state = drawn["richness_per_state"]
    assert set(by_state) == {"AL", "HI"}  # AK has no presence at threshold 2
    for name in MAPS:
        body = s3.get_object(Bucket=s3.bucket, Key=f"{SUMMARY}{name}")["Body"].read()
        assert body[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_county_boundaries_are_named(s3):  # noqa: F811
    upload(s3)
    dbf = COUNTY_SHAPEFILE_KEY.removesuffix(".shp") + ".dbf"
    s3.delete_object(Bucket=s3.bucket, Key=dbf)
    with pytest.raises(ValueError, match=f"county boundaries s3://{s3.bucket}/{dbf}: NoSuchKey"):
        calc_stats.run(spec(s3))
    assert "Contents" not in s3.list_objects_v2(Bucket=s3.bucket, Prefix=DONE_KEY)
