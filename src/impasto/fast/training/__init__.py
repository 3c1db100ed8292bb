"""What the three families' trainings share: the photos and the one batch source (``data``), and
the one loop, checkpoint format and result type (``loop``)."""
