"""In-group runtime, applications, out-group processes and the ground truth.

runtime.py      the in-group runtime (sockets, lock, DSR, OOB): Runtime, App, Client
snapshots.py    the snapshot rule, per-ID records and channel accounting; Mode
datagrams.py    what arrives at :4790 after the Beaver header (SLB inner packet, peer header)
messages.py     application messages: JSON with a unique "id"
oob_server.py   the process side of traffic/oob/protocol.py
eventlog.py     the ground-truth event log every process writes
checker.py      happens-before from the logs: is each snapshot consistent?
kvstore.py      in-group service: replicated key-value store
bank.py         in-group service: sharded bank (a snapshot's total is checkable)
outgroup.py     an out-group process's socket
clients.py      out-group open- and closed-loop clients
relay.py        out-group relay (the hidden causality of Figures 3 and 5)
thirdparty.py   out-group webhook service the in-group calls out to
anomaly.py      the anomalous-access use case: humans, bots, the detector
cli.py          command-line plumbing shared by every process
"""
