"""Desktop crypto trading terminal with local, honestly evaluated machine learning."""

__version__ = "0.1.0"
