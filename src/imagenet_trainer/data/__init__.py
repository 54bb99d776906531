"""Data: folder index, decoding, crop geometry, datasets, samplers and the device-side loader."""
