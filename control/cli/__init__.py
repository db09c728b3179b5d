"""The `beaver` command (main.py): `snapshot`, `ctl` and `experiment`, over shared
options (common.py)."""
