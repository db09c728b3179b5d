"""The out-of-band protocol between the controller and the in-group processes, both
ends: the protocol (protocol.py), reports as changes (deltas.py), the controller's links
(links.py), and the process side (server.py, answers.py)."""
