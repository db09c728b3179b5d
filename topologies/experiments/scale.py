"""The clean run at scale: 8 SLBs and as many hosts as this machine holds."""
from beaver.topologies.experiments import clean


def add_arguments(p):
    clean.add_arguments(p, slbs=8, ingroup=16, outgroup=16, count=100)


run = clean.run
