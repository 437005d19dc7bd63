"""claimtrace: news articles to an annotated claim-attribution corpus and models trained on it."""

__version__ = "0.1.0"
