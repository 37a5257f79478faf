"""The gRPC face of the function: RunFunctionRequest in, desired composed resources and readiness out."""
from __future__ import annotations

import grpc
from crossplane.function import resource, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from . import compose as composing


class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
    """Composes CellMySQLClaim and ReplicationClaim composite resources (see compose.py)."""

    async def RunFunction(self, req: fnv1.RunFunctionRequest, _: grpc.aio.ServicerContext | None = None
                          ) -> fnv1.RunFunctionResponse:  # noqa: N802 (gRPC's name)
        return run(req)


def run(req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
    """Synchronous core, shared by the gRPC server and the control plane's simulator."""
    rsp = response.to(req)
    xr = resource.struct_to_dict(req.observed.composite.resource)
    observed = {name: resource.struct_to_dict(r.resource) for name, r in req.observed.resources.items()}
    step_input = resource.struct_to_dict(req.input) if req.HasField("input") else {}
    try:
        out = composing.compose(xr, observed, step_input)
    except (composing.InputError, KeyError, TypeError) as exc:
        response.fatal(rsp, f"cannot compose {xr.get('kind')} {xr.get('metadata', {}).get('name')}: {exc}")
        return rsp
    for name, body in out.resources.items():
        resource.update(rsp.desired.resources[name], body)
        rsp.desired.resources[name].ready = fnv1.READY_TRUE if out.ready.get(name) else fnv1.READY_FALSE
    if out.status:
        resource.update(rsp.desired.composite, {"status": out.status})
    for key, value in out.connection.items():
        rsp.desired.composite.connection_details[key] = value.encode()
    ready = composing.composite_ready(out)
    # Crossplane derives the composite's Ready from the composed resources' readiness set above.
    rsp.desired.composite.ready = fnv1.READY_TRUE if ready else fnv1.READY_FALSE
    for message in out.messages:
        response.normal(rsp, message)
    return rsp
