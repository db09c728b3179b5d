"""The clean run at scale: 8 SLBs and as many hosts as this machine holds."""
from . import clean

DESCRIPTION = "a clean run at scale: |G| = 8, 16 in-group and 16 out-group hosts"


def add_arguments(p):
    clean.add_arguments(p, slbs=8, ingroup=16, outgroup=16, count=100)


run = clean.run
