"""Beam plumbing shared by the stages: file matching and JSON, sorted Parquet shards, options."""
