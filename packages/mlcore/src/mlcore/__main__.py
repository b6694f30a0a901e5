"""``python -m mlcore`` runs the CLI."""

from mlcore.cli.main import entry

if __name__ == "__main__":
    entry()
