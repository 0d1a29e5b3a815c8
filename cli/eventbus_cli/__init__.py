"""The ``eventbus`` command line: publish, tail, topology, contracts, codegen, demo.

It sits on top of the SDK (``eventbus``), the code generator (``eventbus_codegen``) and the contract
tooling (``eventbus_governance``); none of those import it. It knows no contracts of its own: it reads
the project's (``_project.py``) at run time.
"""

__all__: list[str] = []
