"""Metrics, written from their published formulas."""
