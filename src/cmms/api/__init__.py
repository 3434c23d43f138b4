"""Generated protobuf and gRPC modules for halo-cmms. Do not edit: run tools/gen_protos.py."""
