"""The three trainers (price, demand, anomaly) and the container's `train` entry."""
