"""The paper's experiments as reproducible figures (``experiments``) and HTML reports (``report``)."""
