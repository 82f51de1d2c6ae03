import sys

from recipes.perf.bench.cli import main

sys.exit(main())
