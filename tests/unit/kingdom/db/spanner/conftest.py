from cmms.testing.spanner_emulator import spanner_emulator

__all__ = ["spanner_emulator"]
