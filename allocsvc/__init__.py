"""allocsvc: an event-sourced reimplementation of Nomad's Allocations HTTP API on trio."""

__version__ = "0.1.0"
