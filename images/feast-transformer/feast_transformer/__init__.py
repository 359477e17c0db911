"""A generic KServe transformer for Feast: entity keys in a V2 request become online features from the Feast
feature server, merged into the predictor's V2 request (see app.py)."""

__version__ = "0.1.0"
