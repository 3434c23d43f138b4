"""Test fixtures: requisitions exactly as the Kingdom would show them, built from a development PKI.

A `ConsentWorld` holds every party's keys and certificate (named `{party}/certificates/cs`); its
`requisitions` method runs the real MC request builder and adds what the duchies would have
published (signed ElGamal keys, signed HPKE keys), so EDP code can be tested without servers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cmms.api.public.v1 import common_pb2, crypto_pb2, protocol_config_pb2, requisitions_pb2
from cmms.clients.certificates import StaticCertificates
from cmms.clients.identity import PartyKeys
from cmms.clients.mc.measurement import (
    DataProviderTarget,
    MeasurementParams,
    PreparedMeasurement,
    build_create_measurement_request,
)
from cmms.common import consent
from cmms.common.identity import Principal, PrincipalKind
from cmms.common.pki import PkiLayout
from cmms.crypto import elgamal, group, signing
from cmms.crypto.hybrid import HPKE_X25519, HybridPrivateKey
from cmms.crypto.randomness import RandomSource

MEASUREMENT_NAME = "measurementConsumers/mc1/measurements/m1"
ProtocolConfig = protocol_config_pb2.ProtocolConfig
P256_CURVE_ID = 415


def certificate_name(principal: Principal) -> str:
    return f"{principal.resource_name}/certificates/cs"


@dataclass
class DuchyKeys:
    """What the duchies published for one computation (and the secrets behind it)."""

    el_gamal: dict[str, elgamal.KeyPair] = field(default_factory=dict)
    hpke: dict[str, HybridPrivateKey] = field(default_factory=dict)

    @property
    def combined_secret(self) -> int:
        return sum(pair.secret for pair in self.el_gamal.values()) % group.ORDER


@dataclass(frozen=True)
class ConsentWorld:
    """Every party of a development PKI with its keys, and a certificate lookup for all of them."""

    pki: PkiLayout
    measurement_consumer: PartyKeys
    data_providers: dict[str, PartyKeys]
    duchy_signing_keys: dict[str, signing.SigningKey]
    certificates: StaticCertificates

    @classmethod
    def from_pki(cls, pki: PkiLayout, measurement_consumer: str = "mc1") -> ConsentWorld:
        principals = pki.load_trust_config().principals
        certificates = {
            certificate_name(p): pki.party(p).cs_cert.read_bytes()
            for p in principals
            if p.kind is not PrincipalKind.KINGDOM
        }
        return cls(
            pki=pki,
            measurement_consumer=PartyKeys.from_pki(
                pki, Principal.measurement_consumer(measurement_consumer)
            ),
            data_providers={
                p.id: PartyKeys.from_pki(pki, p)
                for p in principals
                if p.kind is PrincipalKind.DATA_PROVIDER
            },
            duchy_signing_keys={
                p.id: signing.load_private_key(pki.party(p).cs_key.read_bytes())
                for p in principals
                if p.kind is PrincipalKind.DUCHY
            },
            certificates=StaticCertificates(certificates),
        )

    def target(self, data_provider: str) -> DataProviderTarget:
        keys = self.data_providers[data_provider]
        return DataProviderTarget(
            name=keys.name,
            certificate=certificate_name(keys.principal),
            public_key=consent.encryption_public_key(keys.public_keyset),
            event_groups=(f"{keys.name}/eventGroups/sim",),
        )

    def prepare(
        self, params: MeasurementParams, data_providers: Sequence[str], random: RandomSource
    ) -> PreparedMeasurement:
        return build_create_measurement_request(
            self.measurement_consumer,
            certificate_name(self.measurement_consumer.principal),
            params,
            [self.target(d) for d in data_providers],
            random,
        )

    def requisitions(
        self,
        prepared: PreparedMeasurement,
        protocol_config: protocol_config_pb2.ProtocolConfig,
        duchies: Sequence[str],
        random: RandomSource,
    ) -> tuple[dict[str, requisitions_pb2.Requisition], DuchyKeys]:
        """Each EDP's requisition, with duchy entries as the Kingdom lists them for the protocol."""
        measurement = prepared.request.measurement
        protocol = protocol_config.WhichOneof("protocol")
        keys = DuchyKeys()
        if protocol in ("liquid_legions_v2", "reach_only_liquid_legions_v2"):
            keys.el_gamal = {d: elgamal.generate_key_pair(random) for d in duchies}
        elif protocol == "honest_majority_share_shuffle":
            keys.hpke = {d: HybridPrivateKey.generate(HPKE_X25519) for d in duchies}
        result: dict[str, requisitions_pb2.Requisition] = {}
        for entry in measurement.data_providers:
            data_provider_id = entry.key.split("/")[1]
            requisition = requisitions_pb2.Requisition(
                name=f"{entry.key}/requisitions/r-{data_provider_id}",
                measurement=MEASUREMENT_NAME,
                measurement_consumer_certificate=measurement.measurement_consumer_certificate,
                measurement_spec=measurement.measurement_spec,
                protocol_config=protocol_config,
                encrypted_requisition_spec=entry.value.encrypted_requisition_spec,
                data_provider_certificate=entry.value.data_provider_certificate,
                data_provider_public_key=entry.value.data_provider_public_key,
                state=requisitions_pb2.Requisition.UNFULFILLED,
                etag=f'W/"{data_provider_id}"',
            )
            self._add_duchy_entries(requisition, protocol, duchies, keys)
            result[data_provider_id] = requisition
        return result, keys

    def _add_duchy_entries(
        self,
        requisition: requisitions_pb2.Requisition,
        protocol: str | None,
        duchies: Sequence[str],
        keys: DuchyKeys,
    ) -> None:
        if protocol == "direct":
            return
        # HMSS: hash the requisition onto one worker; the other one publishes the seed key.
        digest = hashlib.sha256(requisition.name.encode()).digest()
        assigned = duchies[digest[0] % len(duchies)] if duchies else ""
        for duchy in duchies:
            principal = Principal.duchy(duchy)
            entry = requisition.duchies.add(key=principal.resource_name)
            entry.value.duchy_certificate = certificate_name(principal)
            signer = self.duchy_signing_keys[duchy]
            if protocol in ("liquid_legions_v2", "reach_only_liquid_legions_v2"):
                key = crypto_pb2.ElGamalPublicKey(
                    elliptic_curve_id=P256_CURVE_ID,
                    generator=group.GENERATOR,
                    element=keys.el_gamal[duchy].public,
                )
                getattr(entry.value, protocol).el_gamal_public_key.CopyFrom(
                    consent.sign_message(key, signer)
                )
            elif protocol == "honest_majority_share_shuffle":
                hmss = entry.value.honest_majority_share_shuffle
                hmss.SetInParent()
                if duchy != assigned:
                    public = consent.encryption_public_key(keys.hpke[duchy].public_key().keyset())
                    hmss.public_key.CopyFrom(consent.sign_message(public, signer))
            elif protocol == "trus_tee":
                entry.value.trus_tee.SetInParent()


def llv2_config(max_size: int = 100_000, reach_only: bool = False) -> ProtocolConfig:
    config = ProtocolConfig(
        measurement_type=ProtocolConfig.REACH if reach_only else ProtocolConfig.REACH_AND_FREQUENCY
    )
    target = config.reach_only_liquid_legions_v2 if reach_only else config.liquid_legions_v2
    target.sketch_params.decay_rate = 5.6
    target.sketch_params.max_size = max_size
    target.sketch_params.sampling_indicator_size = 0 if reach_only else 10_000_000
    target.elliptic_curve_id = P256_CURVE_ID
    return config


def hmss_config(reach_only: bool = False, ring_modulus: int = 127) -> ProtocolConfig:
    config = ProtocolConfig(
        measurement_type=ProtocolConfig.REACH if reach_only else ProtocolConfig.REACH_AND_FREQUENCY
    )
    config.honest_majority_share_shuffle.ring_modulus = ring_modulus
    return config


def trustee_config(reach_only: bool = False) -> ProtocolConfig:
    config = ProtocolConfig(
        measurement_type=ProtocolConfig.REACH if reach_only else ProtocolConfig.REACH_AND_FREQUENCY
    )
    config.trus_tee.SetInParent()
    return config


def direct_config(reach_only: bool = False) -> ProtocolConfig:
    config = ProtocolConfig(
        measurement_type=ProtocolConfig.REACH if reach_only else ProtocolConfig.REACH_AND_FREQUENCY
    )
    config.direct.noise_mechanisms.append(common_pb2.NONE)
    return config
