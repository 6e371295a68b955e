"""`python -m tandem` is the `tandem` command, for callers that hold an interpreter rather than
a script on PATH (tandem.flywheel.server starts `tandem serve` this way).

    python -m tandem serve --port 8000
"""

from tandem.cli.main import app

if __name__ == "__main__":
    # Without prog_name, --help would call the command "python -m tandem" or "__main__.py".
    app(prog_name="tandem")
