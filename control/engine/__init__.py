"""The snapshot engine (engine.py maps it): the one thread of decisions (loop.py), the
window of IDs in flight, timing, the requests of single snapshots and of batches, the rules
and verdicts, the in-group reports of accepted snapshots, and the ledger that stores them."""
