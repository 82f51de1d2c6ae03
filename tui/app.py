"""spatialmix-tui: watch and start runs in a terminal (Textual). Its issue has not landed yet."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="spatialmix-tui", description="Terminal UI over spatialmix run "
                                     "folders (coming soon: follow events.jsonl, start runs, show reports).")
    parser.add_argument("--runs-dir", default="runs", help="where run folders are (default: ./runs)")
    parser.parse_args(argv)
    print("spatialmix-tui is coming soon; meanwhile `spatialmix results` shows the run folders.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
