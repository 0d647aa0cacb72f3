"""The Hub tests are a package (``hub.*``) so that their ``conftest.py`` is ``hub.conftest``: a second top-level
``conftest`` module would replace ``tests/conftest.py`` in ``sys.modules`` and break ``from conftest import ...``
in every test module collected after this folder."""
