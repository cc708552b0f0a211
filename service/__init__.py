"""cubehook's web side and the contract it shares with the workers."""
