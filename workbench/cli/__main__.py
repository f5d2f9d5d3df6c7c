"""``python -m workbench.cli``: the ``workbench`` command without the console script.

Lightning's DDP launcher starts the other ranks by re-running this process's command line; a
module entry point keeps that command line valid (``python -c ...`` cannot be re-run).
"""
from workbench.cli import main

main()
