"""System API v1 (duchy-facing): Computations, ComputationParticipants, ComputationLogEntries,
Requisitions. The calling duchy is the mTLS principal."""
