"""Honest Majority Share Shuffle: stage machine and, later, stage functions."""
