#!/usr/bin/env python3
"""Generate the Python protobuf, gRPC and typed-stub modules from `proto/` into `src/`.

The proto import paths (`cmms/api/...`) equal the Python package paths, so the generated modules
land in `src/cmms/api/` and import each other without any rewriting.

    python tools/gen_protos.py           # regenerate src/cmms/api
    python tools/gen_protos.py --check   # exit 1 if regenerating would change src/cmms/api
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
SRC_ROOT = ROOT / "src"
GENERATED_PACKAGE = Path("cmms") / "api"
HEADER = '"""Generated protobuf and gRPC modules for halo-cmms. Do not edit: run tools/gen_protos.py."""\n'


def _plugin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = candidate if candidate.exists() else shutil.which(name)
    if not found:
        raise SystemExit(
            f"gen_protos: {name} not found; install the dev extras (pip install -e '.[dev]')"
        )
    return str(found)


def generate(out_root: Path) -> None:
    """Run protoc over every .proto under proto/, writing packages below `out_root`."""
    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))
    if not protos:
        raise SystemExit("gen_protos: no .proto files under proto/")
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("gen_protos: protoc failed")
    package_root = out_root / GENERATED_PACKAGE
    for directory in [package_root, *(d for d in package_root.rglob("*") if d.is_dir())]:
        (directory / "__init__.py").write_text(HEADER if directory == package_root else "")


def _tree(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def check() -> int:
    """Return 0 when src/cmms/api is exactly what generation produces, else print the differences."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = _tree(Path(tmp) / GENERATED_PACKAGE)
        committed = _tree(SRC_ROOT / GENERATED_PACKAGE)
        problems = sorted(
            [f"missing: {name}" for name in fresh.keys() - committed.keys()]
            + [f"stale: {name}" for name in committed.keys() - fresh.keys()]
            + [
                f"differs: {name}"
                for name in fresh.keys() & committed.keys()
                if not filecmp.cmp(fresh[name], committed[name], shallow=False)
            ]
        )
    for problem in problems:
        print(f"gen_protos --check: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    if parser.parse_args().check:
        return check()
    target = SRC_ROOT / GENERATED_PACKAGE
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(Path(tmp) / GENERATED_PACKAGE, target)
    print(f"gen_protos: wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
