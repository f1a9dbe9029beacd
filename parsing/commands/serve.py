"""``parsing serve``: the HTTP service and the web studio (``parsing.serve``) on http://127.0.0.1:8000/.

Binds 127.0.0.1 unless told otherwise; bound to another address, saving to ``--dataset`` needs ``--token`` (or
``PARSING_TOKEN``), sent as ``Authorization: Bearer TOKEN``. ``--workers N`` starts N server processes, each with
its own model (~0.5 GB each).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import sys
from pathlib import Path

from parsing.commands.help import plain
from parsing.model.checkpoint import SHIPPED

ENV = "PARSING_SERVE_ARGS"  # how the worker processes of --workers N get the options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="parsing serve", description=plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default=str(SHIPPED), help="the model (default: the shipped CCP model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dataset", type=Path, default=None, help="folder that 'Save to dataset' writes pairs to")
    parser.add_argument("--catalogue", type=Path, default=None, help="a catalogue (parsing index) for POST /search")
    parser.add_argument(
        "--photos", type=Path, default=None, help="a labelling queue: this folder's photos, the most unsure first"
    )
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="larger request bodies get 413")
    parser.add_argument("--max-image-pixels", type=int, default=60_000_000, help="larger photos get 413")
    parser.add_argument("--workers", type=int, default=1, help="server processes (each loads the model)")
    parser.add_argument("--crf", choices=("none", "fast", "dense"), default="fast", help="default CRF")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--token", default=os.environ.get("PARSING_TOKEN"), help="token that saving needs")
    return parser.parse_args(argv)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def port_free(host: str, port: int) -> str | None:
    """None when ``host:port`` can be listened on, else why not (checked before the model loads)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as err:
            return err.strerror or str(err)
    return None


def app_from_args(args: argparse.Namespace):  # noqa: ANN201
    from parsing.inference.parser import Parser
    from parsing.serve.app import Service, create_app
    from parsing.tuning import tune_process

    parser = Parser.load(args.checkpoint, device=args.device, crf=args.crf)
    tune_process()
    service = Service(
        parser,
        dataset=args.dataset,
        max_upload_mb=args.max_upload_mb,
        max_image_pixels=args.max_image_pixels,
        token=args.token,
        save_needs_token=not loopback(args.host),
        photos=args.photos,
        catalogue=args.catalogue,
    )
    return create_app(service)


def app_from_env():  # noqa: ANN201
    """The app factory uvicorn's worker processes call (``--workers`` > 1)."""
    return app_from_args(parse_args(json.loads(os.environ[ENV])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print("parsing serve: needs the serve extra: pip install 'clothing-parsing[serve]'", file=sys.stderr)
        return 2
    if args.photos is not None and args.dataset is None:
        print("parsing serve: --photos needs --dataset OUT (the folder the labels are saved to)", file=sys.stderr)
        return 2
    if args.photos is not None and not args.photos.is_dir():
        print(f"parsing serve: --photos {args.photos}: not a folder", file=sys.stderr)
        return 2
    busy = port_free(args.host, args.port)
    if busy is not None:
        where = f"{args.host}:{args.port}"
        print(f"parsing serve: cannot listen on {where} ({busy}): choose another --port", file=sys.stderr)
        return 2
    if not loopback(args.host) and args.dataset is not None and not args.token:
        print(f"parsing serve: on {args.host}, saving needs --token (or PARSING_TOKEN); saving is off", file=sys.stderr)
    try:
        if args.workers > 1:
            os.environ[ENV] = json.dumps(sys.argv[1:] if argv is None else argv)
            target = "parsing.commands.serve:app_from_env"
            uvicorn.run(target, factory=True, host=args.host, port=args.port, workers=args.workers)
        else:
            app = app_from_args(args)
            print(f"parsing serve: http://{args.host}:{args.port}/ (studio), /docs (API)", file=sys.stderr)
            uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except (FileNotFoundError, ValueError) as err:
        print(f"parsing serve: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
