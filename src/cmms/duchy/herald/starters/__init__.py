"""Per-protocol starters: turn a Kingdom computation into this duchy's CreateComputation request
(duchy_internals §7.3). `starter_for` picks the one matching the Kingdom's MPC protocol config."""
