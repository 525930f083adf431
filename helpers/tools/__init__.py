"""Functions a model may call: the tool loop and the math assistant's calculator.

- :mod:`.loop`: ``Tool`` / ``tool``, ``run_call``, the streamed tool loop (sync and async);
- :mod:`.calculator`: ``calculate``, arithmetic parsed with ``ast``, never ``eval``.
"""
