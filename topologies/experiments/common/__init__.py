"""What the experiments share: the snapshot methods (Beaver, Lai-Yang, polling), a
measured phase, paired ratios, verdicts beside the ground truth, and the results folder."""
