"""Test NApp of the fnaa Kytos tests."""
