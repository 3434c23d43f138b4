"""The whole system on loopback: a Kingdom, three duchies and three EDPs as supervised processes.

`supervisor` runs and stops child processes; `system` composes the local deployment that
`cmms local up` and `cmms demo` start.
"""
