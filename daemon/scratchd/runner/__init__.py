"""Runs a Plan's steps on a backend (host processes or a Docker container)."""
