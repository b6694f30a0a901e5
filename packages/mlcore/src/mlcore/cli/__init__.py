"""The ``mlcore`` command line (click). Each command module imports heavy code only when run."""
