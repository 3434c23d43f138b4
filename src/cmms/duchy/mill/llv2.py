"""Liquid Legions v2 (reach and frequency) stage handlers (llv2 spec §4, §5, §7).

The ring is the participant list (aggregator last). Each working stage computes from its single
input (the aggregator's setup phase: its requisitions plus every worker's setup output), stores
the output, sends it to the aggregator (workers' setup) or to the next duchy in the ring, and
moves on. With F = 1 everyone stops after phase two; the aggregator reports the result.
"""

from __future__ import annotations

from cmms.api.internal.duchy.protocol.v1 import llv2_pb2
from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.duchy.mill.context import StageContext
from cmms.duchy.mill.errors import PermanentError
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
from cmms.protocols.llv2.actions import Recipient, StageAction, action_for, finishes_after_phase_two
from cmms.protocols.llv2.execution_phase_one import (
    ExecutionPhaseOneRequest,
    execution_phase_one_aggregator,
    execution_phase_one_non_aggregator,
)
from cmms.protocols.llv2.execution_phase_three import (
    ExecutionPhaseThreeRequest,
    execution_phase_three_aggregator,
    execution_phase_three_non_aggregator,
)
from cmms.protocols.llv2.execution_phase_two import (
    ExecutionPhaseTwoRequest,
    execution_phase_two_aggregator,
    execution_phase_two_non_aggregator,
)
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.protocols.llv2.setup_phase import SetupPhaseRequest, setup_phase
from cmms.protocols.llv2.stages import Role, Stage
from cmms.protocols.stages import ProtocolType

Llv2 = llv2_pb2.LiquidLegionsV2
Methodology = MeasurementResult.Methodology


class Llv2Handlers:
    def __init__(self, common: LiquidLegionsCommon) -> None:
        self._common = common

    def table(self) -> HandlerTable:
        a, w = Role.AGGREGATOR, Role.NON_AGGREGATOR
        handlers: dict[tuple[int, int], Handler] = {}
        for role in (a, w):
            handlers[(Stage.INITIALIZATION_PHASE, role)] = self._common.initialization_phase
            handlers[(Stage.CONFIRMATION_PHASE, role)] = self._common.confirmation_phase
            handlers[(Stage.SETUP_PHASE, role)] = self.setup_phase
            handlers[(Stage.EXECUTION_PHASE_ONE, role)] = self.execution_phase_one
        handlers[(Stage.EXECUTION_PHASE_TWO, w)] = self.execution_phase_two_worker
        handlers[(Stage.EXECUTION_PHASE_TWO, a)] = self.execution_phase_two_aggregator
        handlers[(Stage.EXECUTION_PHASE_THREE, w)] = self.execution_phase_three_worker
        handlers[(Stage.EXECUTION_PHASE_THREE, a)] = self.execution_phase_three_aggregator
        return HandlerTable(ProtocolType.LIQUID_LEGIONS_V2, handlers)

    # ------------------------------------------------------------------------- stages

    async def setup_phase(self, ctx: StageContext) -> None:
        async def compute() -> bytes:
            received = tuple(await ctx.read_inputs()) if ctx.role == Role.AGGREGATOR else ()
            request = SetupPhaseRequest(
                self._parameters(ctx), self._common.keys(ctx), await own_requisitions(ctx), received
            )
            rng = ctx.randomness.derive("setup")
            return ctx.compute(setup_phase, request, rng, execution_options(ctx)).registers

        await self._send_and_advance(ctx, await ctx.output_or(compute))

    async def execution_phase_one(self, ctx: StageContext) -> None:
        function = (
            execution_phase_one_aggregator
            if ctx.role == Role.AGGREGATOR
            else execution_phase_one_non_aggregator
        )

        async def compute() -> bytes:
            request = ExecutionPhaseOneRequest(
                self._parameters(ctx), self._common.keys(ctx), await single_input(ctx)
            )
            rng = ctx.randomness.derive("phase-one")
            return ctx.compute(function, request, rng, execution_options(ctx)).payload

        await self._send_and_advance(ctx, await ctx.output_or(compute))

    async def execution_phase_two_worker(self, ctx: StageContext) -> None:
        async def compute() -> bytes:
            request = ExecutionPhaseTwoRequest(
                self._parameters(ctx), self._common.keys(ctx), await single_input(ctx)
            )
            rng = ctx.randomness.derive("phase-two")
            return ctx.compute(
                execution_phase_two_non_aggregator, request, rng, execution_options(ctx)
            ).tuples

        payload = await ctx.output_or(compute)
        parameters = self._parameters(ctx)
        await self._send(ctx, payload)
        if finishes_after_phase_two(parameters.max_frequency):
            await ctx.finish()
        else:
            await ctx.advance()

    async def execution_phase_two_aggregator(self, ctx: StageContext) -> None:
        parameters = self._parameters(ctx)

        async def compute() -> bytes:
            request = ExecutionPhaseTwoRequest(
                parameters, self._common.keys(ctx), await single_input(ctx)
            )
            rng = ctx.randomness.derive("phase-two")
            response = ctx.compute(
                execution_phase_two_aggregator, request, rng, execution_options(ctx)
            )
            # Kept before the output is stored: a retry that reuses the output needs it too.
            details = computation_details_pb2.ComputationDetails()
            details.CopyFrom(ctx.token.computation_details)
            details.liquid_legions_v2.reach_estimate.reach = response.reach
            await ctx.update_details(details)
            return response.ska_matrix

        ska_matrix = await ctx.output_or(compute)
        if not ctx.details.HasField("reach_estimate"):
            raise PermanentError("phase two left no reach estimate")
        if finishes_after_phase_two(parameters.max_frequency):
            await ctx.report_result(self._result(ctx, ctx.details.reach_estimate.reach, None))
            await ctx.finish()
            return
        await self._send(ctx, ska_matrix)
        await ctx.advance()

    async def execution_phase_three_worker(self, ctx: StageContext) -> None:
        async def compute() -> bytes:
            request = ExecutionPhaseThreeRequest(
                self._parameters(ctx), self._common.keys(ctx), await single_input(ctx)
            )
            return ctx.compute(
                execution_phase_three_non_aggregator, request, execution_options(ctx)
            ).ska_matrix

        await self._send(ctx, await ctx.output_or(compute))
        await ctx.finish()

    async def execution_phase_three_aggregator(self, ctx: StageContext) -> None:
        if not ctx.details.HasField("reach_estimate"):
            raise PermanentError("no reach estimate from phase two")
        request = ExecutionPhaseThreeRequest(
            self._parameters(ctx), self._common.keys(ctx), await single_input(ctx)
        )
        response = ctx.compute(execution_phase_three_aggregator, request, execution_options(ctx))
        await ctx.report_result(
            self._result(ctx, ctx.details.reach_estimate.reach, response.frequency)
        )
        await ctx.finish()

    # ------------------------------------------------------------------------- helpers

    async def _send_and_advance(self, ctx: StageContext, payload: bytes) -> None:
        await self._send(ctx, payload)
        await ctx.advance()

    async def _send(self, ctx: StageContext, payload: bytes) -> None:
        action: StageAction = action_for(Role(ctx.role), Stage(ctx.stage))
        assert action.description is not None and action.expected_peer_stage is not None
        ring = ring_of(ctx)
        peer = ring.aggregator if action.recipient is Recipient.AGGREGATOR else ring.next_duchy
        await ctx.send(peer, action.description, action.expected_peer_stage, payload)

    def _parameters(self, ctx: StageContext) -> ReachAndFrequencyParameters:
        parameters: Llv2.Parameters = ctx.details.parameters
        max_frequency = max(1, parameters.maximum_frequency)
        return ReachAndFrequencyParameters(
            decay_rate=parameters.sketch_parameters.decay_rate,
            max_size=parameters.sketch_parameters.size,
            duchies=len(ctx.details.participants),
            requisitions=parameters.requisition_count or len(ctx.token.requisitions),
            noise=noise_config(parameters.noise, with_frequency=max_frequency > 1),
            vid_sampling_width=vid_sampling_width(ctx),
            max_frequency=max_frequency,
        )

    def _result(
        self, ctx: StageContext, reach: int, frequency: dict[int, float] | None
    ) -> MeasurementResult:
        sketch = ctx.details.parameters.sketch_parameters
        methodology = Methodology(
            liquid_legions_v2=Methodology.LiquidLegionsV2(
                decay_rate=sketch.decay_rate, max_size=sketch.size
            )
        )
        result = MeasurementResult(
            reach=MeasurementResult.Reach(value=reach, methodology=methodology)
        )
        if frequency is not None:
            result.frequency.relative_frequency_distribution.update(frequency)
            result.frequency.methodology.CopyFrom(methodology)
        return result
