"""Shim for Beam's --setup_file (Dataflow workers build the project from it); config is in pyproject.toml."""

from setuptools import setup

setup()
