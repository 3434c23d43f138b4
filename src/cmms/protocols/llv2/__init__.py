"""Liquid Legions v2 (reach and frequency): stage machine and, later, stage functions."""
