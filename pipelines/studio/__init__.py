"""Label Studio integration: a local server (``server``), the labeling config (``labeling``), pure
document <-> task conversions (``tasks``), push/pull sync (``sync``) and inter-annotator agreement
(``agreement``); ``cli`` wraps them. Nothing here imports torch or the model code: the
``claimtrace`` CLI passes a predictor in for model pre-annotations."""
