"""Getting the data in: the public corpora (``fetch``, ``convert``, ``corpora/``) and news articles
(``ingest``, ``cleaning``)."""
