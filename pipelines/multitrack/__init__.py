"""The multi-track corpus: folk tunes with MMA's drums and bass (`python -m pipelines.multitrack`)."""
