"""Reusable Qt views (charts, tables, forms); they display data and emit user intent, nothing more."""
