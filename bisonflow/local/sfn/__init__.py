"""Emulator seams of Step Functions: where moto's interpreter differs from AWS, made strict."""
