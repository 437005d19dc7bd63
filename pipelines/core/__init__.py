"""The ground floor every part builds on: the document model, params, file I/O, text helpers,
the denial lexicon, scoring and the stage log line. Imports nothing else from ``pipelines``."""
