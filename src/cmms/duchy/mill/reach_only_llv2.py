"""Reach-only Liquid Legions v2 stage handlers (llv2 spec §5R): LLv2's first phases, then a single
execution phase around the ring; the aggregator reports the reach."""

from __future__ import annotations

from cmms.api.internal.duchy.protocol.v1 import reach_only_llv2_pb2
from cmms.duchy.mill.context import StageContext
from cmms.duchy.mill.handlers import Handler, HandlerTable
from cmms.duchy.mill.liquid_legions import (
    LiquidLegionsCommon,
    execution_options,
    noise_config,
    own_requisitions,
    ring_of,
    single_input,
    vid_sampling_width,
)
from cmms.duchy.mill.results import MeasurementResult
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.llv2.actions import Recipient
from cmms.protocols.reach_only_llv2.actions import action_for
from cmms.protocols.reach_only_llv2.execution_phase import (
    ExecutionPhaseRequest,
    execution_phase_aggregator,
    execution_phase_non_aggregator,
)
from cmms.protocols.reach_only_llv2.setup_phase import SetupPhaseRequest, setup_phase
from cmms.protocols.reach_only_llv2.stages import Role, Stage
from cmms.protocols.stages import ProtocolType

ReachOnly = reach_only_llv2_pb2.ReachOnlyLiquidLegionsV2
Methodology = MeasurementResult.Methodology


class ReachOnlyLlv2Handlers:
    def __init__(self, common: LiquidLegionsCommon) -> None:
        self._common = common

    def table(self) -> HandlerTable:
        a, w = Role.AGGREGATOR, Role.NON_AGGREGATOR
        handlers: dict[tuple[int, int], Handler] = {}
        for role in (a, w):
            handlers[(Stage.INITIALIZATION_PHASE, role)] = self._common.initialization_phase
            handlers[(Stage.CONFIRMATION_PHASE, role)] = self._common.confirmation_phase
            handlers[(Stage.SETUP_PHASE, role)] = self.setup_phase
        handlers[(Stage.EXECUTION_PHASE, w)] = self.execution_phase_worker
        handlers[(Stage.EXECUTION_PHASE, a)] = self.execution_phase_aggregator
        return HandlerTable(ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2, handlers)

    async def setup_phase(self, ctx: StageContext) -> None:
        async def compute() -> bytes:
            received = tuple(await ctx.read_inputs()) if ctx.role == Role.AGGREGATOR else ()
            request = SetupPhaseRequest(
                self._parameters(ctx), self._common.keys(ctx), await own_requisitions(ctx), received
            )
            rng = ctx.randomness.derive("setup")
            return ctx.compute(setup_phase, request, rng, execution_options(ctx)).payload

        await self._send(ctx, await ctx.output_or(compute))
        await ctx.advance()

    async def execution_phase_worker(self, ctx: StageContext) -> None:
        async def compute() -> bytes:
            request = ExecutionPhaseRequest(
                self._parameters(ctx), self._common.keys(ctx), await single_input(ctx)
            )
            rng = ctx.randomness.derive("execution")
            return ctx.compute(
                execution_phase_non_aggregator, request, rng, execution_options(ctx)
            ).payload

        await self._send(ctx, await ctx.output_or(compute))
        await ctx.finish()

    async def execution_phase_aggregator(self, ctx: StageContext) -> None:
        request = ExecutionPhaseRequest(
            self._parameters(ctx), self._common.keys(ctx), await single_input(ctx)
        )
        response = ctx.compute(execution_phase_aggregator, request, execution_options(ctx))
        sketch = ctx.details.parameters.sketch_parameters
        methodology = Methodology(
            reach_only_liquid_legions_v2=Methodology.ReachOnlyLiquidLegionsV2(
                decay_rate=sketch.decay_rate, max_size=sketch.size
            )
        )
        await ctx.report_result(
            MeasurementResult(
                reach=MeasurementResult.Reach(value=response.reach, methodology=methodology)
            )
        )
        await ctx.finish()

    async def _send(self, ctx: StageContext, payload: bytes) -> None:
        action = action_for(Role(ctx.role), Stage(ctx.stage))
        assert action.description is not None and action.expected_peer_stage is not None
        ring = ring_of(ctx)
        peer = ring.aggregator if action.recipient is Recipient.AGGREGATOR else ring.next_duchy
        await ctx.send(peer, action.description, action.expected_peer_stage, payload)

    def _parameters(self, ctx: StageContext) -> LiquidLegionsParameters:
        parameters: ReachOnly.Parameters = ctx.details.parameters
        return LiquidLegionsParameters(
            decay_rate=parameters.sketch_parameters.decay_rate,
            max_size=parameters.sketch_parameters.size,
            duchies=len(ctx.details.participants),
            requisitions=parameters.requisition_count or len(ctx.token.requisitions),
            noise=noise_config(parameters.noise, with_frequency=False),
            vid_sampling_width=vid_sampling_width(ctx),
        )
