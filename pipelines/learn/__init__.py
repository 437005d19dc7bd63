"""Building the datasets, training both models and evaluating them (the DVC stages after ``convert``)."""
