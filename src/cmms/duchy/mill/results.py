"""The aggregator's result for the Kingdom: signed with this duchy's consent-signaling key and
encrypted to the measurement consumer's public key (hmss_trustee §A.2 step 6)."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from cmms.api.public.v1 import crypto_pb2, measurements_pb2
from cmms.api.system.v1 import computations_pb2
from cmms.common import consent
from cmms.crypto import signing
from cmms.duchy.mill.errors import PermanentError
from cmms.duchy.mill.tokens import Token

MeasurementResult = measurements_pb2.Measurement.Result
DEFAULT_PUBLIC_API_VERSION = "v1"


@dataclass(frozen=True)
class ConsentSigner:
    """This duchy's consent-signaling key and the Kingdom's name of its certificate."""

    certificate_name: str
    key: signing.SigningKey

    def sign(self, message: Message) -> crypto_pb2.SignedMessage:
        return consent.sign_message(message, self.key)


def set_result_request(
    token: Token, signer: ConsentSigner, result: MeasurementResult
) -> computations_pb2.SetComputationResultRequest:
    kingdom = token.computation_details.kingdom_computation
    public_key = kingdom.measurement_public_key
    if public_key.format != crypto_pb2.EncryptionPublicKey.TINK_KEYSET or not public_key.data:
        raise PermanentError(
            f"computation {token.global_computation_id} has no usable measurement public key"
        )
    try:
        encrypted = consent.encrypt_signed(signer.sign(result), public_key.data)
    except consent.ConsentSignalError as error:
        raise PermanentError(f"cannot encrypt the result: {error}") from error
    return computations_pb2.SetComputationResultRequest(
        name=f"computations/{token.global_computation_id}",
        aggregator_certificate=signer.certificate_name,
        result_public_key=public_key.SerializeToString(),
        encrypted_result=encrypted.ciphertext,
        public_api_version=kingdom.public_api_version or DEFAULT_PUBLIC_API_VERSION,
    )
