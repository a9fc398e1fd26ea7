"""The pure domain core: Nomad's model, events, commands and the lifecycle rules (no trio, no I/O)."""
