"""Training machinery shared by the recipes: config, data, checkpoints, EMA, losses, the training loop."""
