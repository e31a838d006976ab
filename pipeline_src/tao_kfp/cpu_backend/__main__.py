"""``python -m tao_kfp.cpu_backend <task> ...``."""

import sys

from tao_kfp.cpu_backend.cli import main

sys.exit(main())
