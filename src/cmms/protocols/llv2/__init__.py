"""Liquid Legions v2 (reach and frequency): stage machine, role actions and stage functions.

Stage functions take a frozen request (parameters, this duchy's keys, the received payload), a
`RandomSource` and `ExecutionOptions`, and return a frozen response; payloads are fixed-size
records (198-byte registers, 264-byte flag/count tuples, 66-byte SKA entries). `simulation` runs
the whole ring in process and computes the plaintext ground truth.

Tampering: a payload whose length does not fit its records, or a point that is not a valid
compressed non-identity point, raises as soon as it is decoded. Undetectable by design (ElGamal
has no integrity): a modified byte that still encodes a curve point (about half of all flips of
an x byte), which silently changes that register's plaintext. Not decoded at all, so also not
checked: registers in the setup phase (checked by W_0 in phase one), the key and count of groups
the aggregator drops for being larger than S, and SKA entries after a row's first zero.
"""
