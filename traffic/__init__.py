"""Everything that runs on the hosts: the in-group and the out-group.

runtime/     the in-group runtime that makes an application a Beaver participant
oob/         the out-of-band protocol between the controller and the processes
services/    in-group services: bank, key-value store, locks, objects
outgroup/    out-group programs that know nothing of Beaver: clients, relays, bots
analysis/    the ground truth (checker) and each use case's analysis
messages.py  application messages; frames.py: their framing on TCP
cli.py       the command-line plumbing every process shares
"""
