"""``python -m memories_async._cli``: the command line (as ``python -m memories_async``)."""

from memories_async._cli.app import main

if __name__ == "__main__":
    main()
