"""`python -m lakehouse_ops.cli ...`: the same as the `lakehouse-ops` command."""

from lakehouse_ops.cli import main

if __name__ == "__main__":
    main()
