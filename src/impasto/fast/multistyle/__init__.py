"""The multi-style family (Dumoulin, Shlens & Kudlur 2017): one conditional network holding many
named styles (``model``: the style table, model files, mixes; ``train``: joint training and
``--add-style``)."""
