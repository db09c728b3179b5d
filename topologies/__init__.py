"""The Mininet testbed: a network of BMv2 SLBs, bridges, a border router and
hosts (spec.py draws it), the processes on it, and the experiments
(experiments/, one module per figure or table)."""
