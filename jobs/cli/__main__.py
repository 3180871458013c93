"""`python -m jobs.cli ...` is the `pul` command."""

import sys

from jobs.cli.app import main

sys.exit(main())
