"""The in-group runtime: makes an application process a Beaver participant, over UDP
(udp.py) or TCP (tcp.py); the snapshot rule and records (snapshots.py), what peers do on a
delivered message (peering.py), the ground-truth event log, restore, and the kernel program
that strips MARKs on TCP hosts (bpf/decap.c, flowmap.py)."""
