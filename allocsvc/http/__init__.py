"""The HTTP front end: a Quart-Trio app that speaks Nomad's wire format."""
