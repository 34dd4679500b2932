"""Adapters to the outside world of markets: the simulated market, file importers, exchanges."""
