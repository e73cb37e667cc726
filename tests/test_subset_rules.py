"""BISON's subset and presence threshold by default, each configurable and checked strictly."""

from __future__ import annotations

import pytest

from bisonflow import config
from bisonflow.sql.subset_rules import (
    COUNTRY_CODE,
    DEFAULT_SUBSET_RULES,
    GBIF_BASIS_OF_RECORD,
    GBIF_RANKS_SPECIES_AND_BELOW,
    SubsetRuleError,
    SubsetRules,
    sql_in_list,
)

#: The seed's WHERE clause, copied by hand from github lifemapper/bison (commit be5204f)
#: aws/lambda/bison_s3_create_bison.py lines 153-156 (the same lists in
#: aws/redshift/subset_to_bison.sql lines 118-122), in the seed's order.
SEED_RANKS = (
    "SPECIES",
    "SUBSPECIES",
    "VARIETY",
    "FORM",
    "INFRASPECIFIC_NAME",
    "INFRASUBSPECIFIC_NAME",
)
SEED_BASIS = ("HUMAN_OBSERVATION", "OBSERVATION", "OCCURRENCE", "PRESERVED_SPECIMEN")
#: bison/task/calc_stats.py lines 171-172: `min_count = 3; pam = PAM.init_from_heatmap(...)`.
SEED_MIN_COUNT = 3


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SUBSET_TAXON_RANKS", "SUBSET_BASIS_OF_RECORD", "PAM_MIN_PRESENCE_COUNT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_defaults_are_the_seeds_lists_and_threshold(env: pytest.MonkeyPatch) -> None:
    assert DEFAULT_SUBSET_RULES.taxon_ranks == SEED_RANKS
    assert DEFAULT_SUBSET_RULES.basis_of_record == SEED_BASIS
    assert SubsetRules.from_env() == DEFAULT_SUBSET_RULES
    assert config.DEFAULT_MIN_PRESENCE_COUNT == SEED_MIN_COUNT
    assert config.min_presence_count() == SEED_MIN_COUNT
    where = DEFAULT_SUBSET_RULES.where_sql()
    assert f"taxonrank IN ({sql_in_list(SEED_RANKS)})" in where
    assert f"basisofrecord IN ({sql_in_list(SEED_BASIS)})" in where
    assert f"countrycode = '{COUNTRY_CODE}'" in where


def test_the_vocabularies_are_gbifs() -> None:
    # BasisOfRecord.java: all eleven values; Rank.java: SPECIES down to STRAIN, in order.
    assert len(GBIF_BASIS_OF_RECORD) == len(set(GBIF_BASIS_OF_RECORD)) == 11
    assert GBIF_RANKS_SPECIES_AND_BELOW[0] == "SPECIES"
    assert GBIF_RANKS_SPECIES_AND_BELOW[-1] == "STRAIN"
    assert len(GBIF_RANKS_SPECIES_AND_BELOW) == len(set(GBIF_RANKS_SPECIES_AND_BELOW)) == 26
    for value in GBIF_BASIS_OF_RECORD + GBIF_RANKS_SPECIES_AND_BELOW:
        assert value == value.upper() and value.replace("_", "").isalpha()


def test_configured_lists_come_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("SUBSET_TAXON_RANKS", "SPECIES, SUBSPECIES")
    env.setenv("SUBSET_BASIS_OF_RECORD", "HUMAN_OBSERVATION,MATERIAL_SAMPLE,MACHINE_OBSERVATION")
    rules = SubsetRules.from_env()
    assert rules.taxon_ranks == ("SPECIES", "SUBSPECIES")
    assert rules.basis_of_record == ("HUMAN_OBSERVATION", "MATERIAL_SAMPLE", "MACHINE_OBSERVATION")
    assert "basisofrecord IN ('HUMAN_OBSERVATION', 'MATERIAL_SAMPLE', 'MACHINE_OBSERVATION')" in (
        rules.where_sql()
    )
    env.setenv("SUBSET_TAXON_RANKS", " ")  # empty: the default
    assert SubsetRules.from_env().taxon_ranks == SEED_RANKS
    env.setenv("PAM_MIN_PRESENCE_COUNT", "1")
    assert config.min_presence_count() == 1


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "SUBSET_BASIS_OF_RECORD",
            "HUMAN_OBSERVATION,human_observation",
            "environment variable SUBSET_BASIS_OF_RECORD: 'human_observation' is not a "
            "basisOfRecord of GBIF's vocabulary (one of PRESERVED_SPECIMEN, ",
        ),
        (
            "SUBSET_BASIS_OF_RECORD",
            "PRESERVED_SPECIMEN') OR ('1'='1",
            "environment variable SUBSET_BASIS_OF_RECORD: \"PRESERVED_SPECIMEN') OR ('1'='1\" "
            "is not a basisOfRecord",
        ),
        (
            "SUBSET_TAXON_RANKS",
            "SPECIES,GENUS",
            "environment variable SUBSET_TAXON_RANKS: 'GENUS' is not a taxon rank at or below "
            "SPECIES of GBIF's vocabulary (one of SPECIES, INFRASPECIFIC_NAME, ",
        ),
        (
            "SUBSET_TAXON_RANKS",
            "SPECIES,,FORM",
            "environment variable SUBSET_TAXON_RANKS: '' is not a taxon rank",
        ),
        (
            "SUBSET_TAXON_RANKS",
            "SPECIES,FORM,SPECIES",
            "environment variable SUBSET_TAXON_RANKS: 'SPECIES' given more than once",
        ),
    ],
)
def test_a_bad_value_is_refused_in_one_line_naming_the_variable(
    env: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(config.ConfigError) as refused:
        SubsetRules.from_env()
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_the_rules_refuse_what_is_not_gbif_vocabulary() -> None:
    with pytest.raises(SubsetRuleError, match="at least one basisOfRecord"):
        SubsetRules(basis_of_record=())
    with pytest.raises(SubsetRuleError, match="'FAMILY' is not a taxon rank"):
        SubsetRules(taxon_ranks=("FAMILY",))
    assert SubsetRules(("STRAIN",), ("UNKNOWN",)).taxon_ranks == ("STRAIN",)
    with pytest.raises(ValueError, match="not a vocabulary term"):
        sql_in_list(("x'); DROP TABLE t; --",))
