"""Reach-only Liquid Legions v2: stage machine and, later, stage functions."""
