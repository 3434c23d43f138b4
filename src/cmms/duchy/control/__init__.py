"""Receiving peer duchies' stage inputs: the peer-facing ComputationControl server and the
internal AsyncComputationControl server it hands recorded inputs to."""
