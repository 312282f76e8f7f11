"""One module per group of `armada` commands, each with a register(app) function."""
