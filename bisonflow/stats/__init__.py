"""The month's statistics and what is published beside them (records, provenance, changes)."""
