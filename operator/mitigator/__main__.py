import sys

from mitigator.cli import main

sys.exit(main())
