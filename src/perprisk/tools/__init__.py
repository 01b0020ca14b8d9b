"""Trader's toolkit (SPEC §2.4): pure functions over :mod:`perprisk.formulas`."""
