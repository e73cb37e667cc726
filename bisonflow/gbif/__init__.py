"""GBIF: the monthly open-data snapshot (its schema by date, whether it is out)
and the species API.
"""
