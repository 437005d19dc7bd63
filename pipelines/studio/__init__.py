"""Label Studio integration: a local server (``server``), the labeling config (``config``), pure
document <-> task conversions (``convert``), and push/pull sync (``client``); ``cli`` wraps them."""
