"""Slipway's core, shared by the controller and the hosts: the contract (contract.py), the host program (host/)
and the builder that ships it to hosts as one zipapp (build.py). Standard library only, Python 3.8+."""
