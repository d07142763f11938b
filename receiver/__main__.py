import sys

from receiver.cli.parser import main

sys.exit(main())
