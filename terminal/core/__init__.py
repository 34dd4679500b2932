"""The domain: market data, orders, accounting and storage. No Qt, no ccxt, no torch."""
