"""The Herald: follows the Kingdom's stream of active computations and keeps this duchy's local
computations in step (create, confirm, start, fail), resuming from a stored continuation token.

See docs/HERALD.md for the protocols setup config and the operator's view.
"""
