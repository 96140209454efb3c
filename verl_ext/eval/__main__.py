"""Entry point of ``python -m verl_ext.eval`` (see ``verl_ext.eval.cli``)."""

import sys

from verl_ext.eval.cli import main

if __name__ == "__main__":
    sys.exit(main())
