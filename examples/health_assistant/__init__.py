"""The sample chat candidate: a rule-based multilingual health assistant (see assistant.py)."""
