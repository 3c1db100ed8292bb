"""What the three families' trainings share: the photos and the one batch source (``data``),
the one loop, checkpoint format and result type (``loop``), and the probe of the networks'
normalisations that the droplet term reads (``droplets``)."""
