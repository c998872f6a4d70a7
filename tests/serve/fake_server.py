"""``serve()`` in a process of its own with a stand-in model, for the tests that need a real process: signals, an
open-file limit, the moment the "serving on" line appears.

    python -m tests.serve.fake_server [--gate DIR [--gate-warm-up]] [--nofile N] [--limits JSON]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gate", help="folder of a FileGatedModel's gate; without it, a KeywordModel")
    parser.add_argument("--gate-warm-up", action="store_true", help="the gate holds the start-up's warm-up too")
    parser.add_argument("--nofile", type=int, help="soft limit on open files (ulimit -n) for this process")
    parser.add_argument("--limits", default="{}", help="ServeSettings fields as a JSON object")
    arguments = parser.parse_args()
    if arguments.nofile:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (arguments.nofile, hard))

    from bertwise.serve import serve
    from tests.serve.fakes import FileGatedModel, KeywordModel

    model = FileGatedModel(arguments.gate, arguments.gate_warm_up) if arguments.gate else KeywordModel()
    serve(model, host="127.0.0.1", port=0, log_level="info", access_log=False, **json.loads(arguments.limits))


if __name__ == "__main__":
    main()
