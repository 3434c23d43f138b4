"""Background jobs of the Kingdom (only the pending-measurement TTL)."""
