"""The model code: how inputs are encoded (``encoding``), loading and running trained models
(``inference``) and the rule-based annotator (``rules``). Heavy libraries are imported inside
functions only."""
