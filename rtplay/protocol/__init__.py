"""What the server and the clients share: wire formats and vocabulary. Pure, no I/O.

The process boundary is the package boundary: ``servers/`` imports only this package from
``rtplay``, and this package imports nothing from ``servers/`` or the rest of ``rtplay``
(``tests/test_boundary.py`` checks both). The private internals of the libraries both sides
read live in :mod:`rtplay.compat`, one module per library.
"""
