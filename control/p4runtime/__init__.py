"""The P4Runtime layer, for any switch: one session per switch (session.py), messages
built by name through its P4Info (entries.py), stream packets (packetio.py), and tables
brought to a wanted state (tables.py)."""
