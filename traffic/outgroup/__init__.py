"""Out-group programs: they know nothing of Beaver.  Clients, relays (the hidden
causality of Figure 5), a forwarder, a third-party webhook, workflows, YCSB-like load and
the anomalous-access bots."""
