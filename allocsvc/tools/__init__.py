"""Offline and live-log tooling behind ``allocsvc log …``: inspect, verify, replay, export, history.

Every tool reads a data dir's SQLite log through its own read-only connections (WAL lets them run
beside a live agent's writer) and never writes to the data dir. ``allocsvc.cli.log_tools`` parses
arguments and prints; the modules here compute.
"""
