"""Shared fixtures of the diffplan-vins tests."""
