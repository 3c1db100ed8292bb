"""The any-painting family (Ghiasi et al. 2017): a style predictor (``style_code``) giving the
conditional network the γ/β of any painting (``model``: model files, held-out paintings, ``bind``;
``train``)."""
