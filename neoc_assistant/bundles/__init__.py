"""Signed knowledge-base update bundles: how a national EOC ships its knowledge base to offline laptops.

One job per module: ``format.py`` (the single file: what is in it, reading it
safely), ``signing.py`` (Ed25519 keys and the signature over the bundle's
manifest), ``export.py`` (a full or delta bundle from this knowledge base),
``apply.py`` (verify everything, then apply it so that a kill at any point
leaves the old knowledge base intact), ``tools.py`` (what the ``Assistant``, their
caller, is given).
"""

