"""Local forecasting models (torch) and their honest evaluation. Nothing here imports Qt."""
