"""The trio actor runtime: one actor per allocation, their task runners, supervisor and scheduler."""
