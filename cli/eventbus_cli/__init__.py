"""The ``eventbus`` command line: publish, tail, topology, contracts, codegen, demo.

It sits on top of the SDK (``eventbus``), the generated contracts (``eventbus_contracts``) and the
code generator (``eventbus_codegen``); none of those import it.
"""

__all__: list[str] = []
