"""The US Register of Introduced and Invasive Species (US-RIIS):
its columns, reading, annotating, guarding.
"""
