"""Kytos EP038 listen_events NApp for fnaa."""
