"""The switch-SLBs of a service, as the controller holds them: the fleet of sessions,
pipelines and clocks (fleet.py), Beaver requests to one SLB (requests.py), what its tables
hold (program.py), and its data-plane clock (clock.py, probe.py)."""
