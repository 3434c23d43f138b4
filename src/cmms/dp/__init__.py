"""Differential-privacy noise: parameters, distributed samplers and TrusTee result noisers."""

from cmms.dp.deterministic_laplace import (
    DeterministicTruncatedLaplaceNoiser,
    TruncatedLaplace,
    deterministic_uniform,
)
from cmms.dp.errors import NoiseParameterError, NoiseSamplingError
from cmms.dp.gaussian import GaussianResultNoiser, analytic_gaussian_sigma
from cmms.dp.parameters import (
    DiscreteGaussianNoiseParams,
    GeometricNoiseParams,
    PrivacyParams,
    discrete_gaussian_params,
    geometric_params,
)
from cmms.dp.result_noise import RawResultNoiser, ResultNoiser
from cmms.dp.samplers import (
    discrete_gaussian_component,
    discrete_gaussian_components,
    geometric_component,
    geometric_components,
)

__all__ = [
    "DeterministicTruncatedLaplaceNoiser",
    "DiscreteGaussianNoiseParams",
    "GaussianResultNoiser",
    "GeometricNoiseParams",
    "NoiseParameterError",
    "NoiseSamplingError",
    "PrivacyParams",
    "RawResultNoiser",
    "ResultNoiser",
    "TruncatedLaplace",
    "analytic_gaussian_sigma",
    "deterministic_uniform",
    "discrete_gaussian_component",
    "discrete_gaussian_components",
    "discrete_gaussian_params",
    "geometric_component",
    "geometric_components",
    "geometric_params",
]
