"""make hls: regenerate hls/formats.x and hls/tables.x, then every DSLX kernel to Verilog."""

import argparse
import json

from rich.table import Table

from hls import flow, generated
from scripts.common import HLS, main, make_console


@main
def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=HLS, help="output directory")
    args = parser.parse_args(argv)
    generated.write()
    table = Table(title="XLS kernels")
    for column in ("kernel", "stages", "latency", "verilog"):
        table.add_column(column)
    for name in flow.all_pipelines():
        path = flow.codegen(name, args.out)
        kernel = json.loads(path.with_suffix(".json").read_text())
        table.add_row(name, str(kernel["stages"]), str(kernel["latency"]), str(path))
    make_console().print(table)


if __name__ == "__main__":
    run()
