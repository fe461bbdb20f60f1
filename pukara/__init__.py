"""Pukara: national cyber incident response and monitoring platform."""

__version__ = "0.1.0"
