"""The duchy's internal API server: Computations, ComputationStats and ContinuationTokens over
the computations database. Only this duchy's own components may call it."""
