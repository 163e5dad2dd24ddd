"""Slipway: provision Docker hosts and roll Python services out blue-green with Ansible."""

__version__ = "0.1.0"
