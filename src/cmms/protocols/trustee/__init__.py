"""TrusTee (aggregation inside a trusted execution environment): stage machine and, later, stage functions."""
