"""The Redshift Data API stand-in: moto's redshift-data service running real SQL on DuckDB."""
