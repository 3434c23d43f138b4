"""Public API v1 (consumer- and provider-facing) servicers."""
