import sys

from intake.cli import main

if __name__ == "__main__":  # not again in a worker process (intake.examine)
    sys.exit(main())
