"""Background loops that keep the queue healthy, each one file with the same shape."""
