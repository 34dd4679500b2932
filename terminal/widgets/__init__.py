"""Reusable Qt views (charts, tables, forms): they show data and emit user intent, nothing more."""
