import gc
import sys

from intake.cli import main

if __name__ == "__main__":  # not again in a worker process (intake.examine)
    code = main()
    # The interpreter's last garbage collections walk every object the command loaded
    # (SQLAlchemy's, the email package's, the judges'): 0.1-0.3 s of every command's exit on
    # the project machine, after its work is done. Frozen, they are skipped; nothing here
    # waits on them (connections are closed and logs flushed before main returns).
    gc.freeze()
    sys.exit(code)
