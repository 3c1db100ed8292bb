"""Video: ``io`` (reading and writing frames with OpenCV) and ``frames`` (frame-by-frame
stylisation with a fast network)."""
