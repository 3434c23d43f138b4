"""TrusTee stage handlers (hmss_trustee §B.2): the single aggregator sets its params, then in
COMPUTING opens every requisition's frequency vector (unwrapping envelope-encrypted ones through
the KMS), aggregates, noises and reports the result."""

from __future__ import annotations

from cmms.api.internal.duchy.protocol.v1 import trustee_pb2
from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.crypto.envelope import open_envelope
from cmms.crypto.keystore import KmsClient
from cmms.duchy.mill.context import StageContext
from cmms.duchy.mill.errors import PermanentError
from cmms.duchy.mill.handlers import Handler, HandlerTable
from cmms.duchy.mill.kingdom import RequisitionParams
from cmms.duchy.mill.protocol_params import measurement_type, noise_mechanism, privacy
from cmms.duchy.mill.results import MeasurementResult
from cmms.duchy.mill.tokens import RequisitionMetadata
from cmms.protocols.measurement import NoiseMechanism
from cmms.protocols.stages import ProtocolType
from cmms.protocols.trustee.computing import (
    ComputingRequest,
    ResultThresholds,
    TrusTeeParams,
    run_computing_stage,
)
from cmms.protocols.trustee.stages import Role, Stage

TrusTee = trustee_pb2.TrusTee
DataFormat = computation_details_pb2.RequisitionProtocolDetails.TrusTee.DataFormat
Methodology = MeasurementResult.Methodology


class TrusTeeHandlers:
    def __init__(self, kms: KmsClient | None) -> None:
        self._kms = kms

    def table(self) -> HandlerTable:
        handlers: dict[tuple[int, int], Handler] = {
            (Stage.INITIALIZED, Role.AGGREGATOR): self.initialized,
            (Stage.COMPUTING, Role.AGGREGATOR): self.computing,
        }
        return HandlerTable(ProtocolType.TRUS_TEE, handlers)

    async def initialized(self, ctx: StageContext) -> None:
        await ctx.set_requisition_params(RequisitionParams(trus_tee=RequisitionParams.TrusTee()))
        await ctx.advance()

    async def computing(self, ctx: StageContext) -> None:
        details = ctx.details
        params = _params(details)
        vectors = [await self._frequency_vector(ctx, r) for r in ctx.token.requisitions]
        outcome = ctx.compute(
            run_computing_stage,
            ComputingRequest(params, tuple(vectors)),
            ctx.randomness.derive("noise"),
        )
        result = MeasurementResult(
            reach=MeasurementResult.Reach(
                value=outcome.reach,
                methodology=Methodology(deterministic_count_distinct=Methodology.Deterministic()),
            )
        )
        if outcome.frequency_distribution is not None:
            result.frequency.relative_frequency_distribution.update(outcome.frequency_distribution)
            result.frequency.methodology.deterministic_distribution.SetInParent()
        await ctx.report_result(result)
        await ctx.finish()

    async def _frequency_vector(self, ctx: StageContext, requisition: RequisitionMetadata) -> bytes:
        requisition_id = requisition.external_key.external_requisition_id
        if not requisition.path:
            raise PermanentError(f"requisition {requisition_id} was not fulfilled at this duchy")
        data = await ctx.read_requisition(requisition)
        protocol = requisition.details.protocol.trus_tee
        if protocol.data_format != DataFormat.ENCRYPTED_FREQUENCY_VECTOR:
            return data
        if self._kms is None:
            raise PermanentError(
                f"requisition {requisition_id} is envelope-encrypted and no KMS is configured"
            )
        # The KEK stays in the KMS; only the requisition's data-encryption key is unwrapped.
        dek = open_envelope(self._kms, protocol.kms_kek_uri, protocol.encrypted_dek_ciphertext)
        return ctx.compute(lambda: b"".join(dek.decrypt_chunks([data])))


def _params(details: TrusTee.ComputationDetails) -> TrusTeeParams:
    parameters = details.parameters
    mechanism = noise_mechanism(parameters.noise_mechanism)
    # The DP params are kept even under NONE (and DTL does not use them); pass only what counts.
    uses_budget = mechanism not in (
        NoiseMechanism.NONE,
        NoiseMechanism.DETERMINISTIC_TRUNCATED_LAPLACE,
    )
    thresholds = (
        ResultThresholds(
            parameters.result_minimum_thresholds.min_impressions,
            parameters.result_minimum_thresholds.min_users,
        )
        if parameters.HasField("result_minimum_thresholds")
        else None
    )
    return TrusTeeParams(
        measurement_type=measurement_type(details.measurement_type),
        maximum_frequency=parameters.maximum_frequency,
        vid_sampling_interval_width=parameters.vid_sampling_interval_width,
        noise_mechanism=mechanism,
        reach_privacy=(
            privacy(parameters.reach_dp_params)
            if uses_budget and parameters.HasField("reach_dp_params")
            else None
        ),
        frequency_privacy=(
            privacy(parameters.frequency_dp_params)
            if uses_budget and parameters.HasField("frequency_dp_params")
            else None
        ),
        thresholds=thresholds,
    )
