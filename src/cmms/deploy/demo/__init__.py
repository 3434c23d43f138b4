"""`cmms demo`: a local system, one measurement per protocol, estimates against the truth.

`runner` drives it, `stages` reads per-stage times from the mill jobs' logs, `report` writes
the JSON document and the chart, `display` shows progress and the table.
"""
