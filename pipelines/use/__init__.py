"""Using trained models: ``classify`` and ``predict`` over JSONL files, and publishing to the Hub
(``publish``, ``model_card``)."""
