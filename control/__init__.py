"""The controller: it drives the switch-SLBs over P4Runtime and sequences snapshots.

p4runtime/   the P4Runtime layer, for any switch
slbs/        the SLBs of a service: fleet, requests, program, clocks
engine/      the snapshot engine: numbering, requests, rules, verdicts, reports
store.py     the durable snapshot store (SQLite)
config.py    the service configuration (TOML)
cli/         the `beaver` command
"""
