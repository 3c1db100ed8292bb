"""The one-style family (Johnson, Alahi & Fei-Fei 2016): one network per painting, trained by
``train``; its model files are ``fast.model``'s."""
