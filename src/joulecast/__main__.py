"""``python -m joulecast``: the same as the ``joulecast`` command."""

from joulecast.cli.main import main

if __name__ == "__main__":
    main()
