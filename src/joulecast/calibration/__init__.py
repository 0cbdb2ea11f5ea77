"""Fitting the time and power models to measurements, and reporting accuracy."""
