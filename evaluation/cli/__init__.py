"""The `musicvae` command: sample, interpolate, encode and edit music with a registered model."""
