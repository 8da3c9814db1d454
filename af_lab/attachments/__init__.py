"""Notebook attachments: the DIDs a notebook uses, re-resolved against Rucio and the mounts."""
