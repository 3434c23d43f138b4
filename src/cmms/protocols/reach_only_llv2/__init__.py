"""Reach-only Liquid Legions v2: stage machine, role actions and stage functions.

Payloads are 66-byte registers followed by one 66-byte excess-noise ciphertext. Validation
follows `cmms.protocols.llv2`: lengths and every decoded point are checked; the setup phase
decodes only the received excess-noise ciphertexts, the registers are first decoded by W_0.
"""
