"""Data in: readers of raw video sources, the clip-shard writer and reader, manifests,
and the synthetic video generator. Imports neither pul, jobs nor cluster."""
