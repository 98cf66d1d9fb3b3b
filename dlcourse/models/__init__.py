"""Models that a second notebook or chapter reuses: MLPs, recurrent nets, encoder-decoders."""
