"""The mill: runs one stage of a claimed computation at a time (duchy_internals §8).

`StageRunner` does the orchestration every protocol shares (attempt limit, dispatch, error
classification, retry by re-enqueueing, failure reporting, stage statistics). The collaborators it
composes are small and replaceable: `ComputationsClient` (internal API), `StageBlobs` (blob I/O),
`PeerSender` (ComputationControl of the other duchies), `KingdomReporter` (system API),
`StatsRecorder` (ComputationStats and Prometheus). What a protocol does in a stage lives in its
handler table (`hmss`, `trustee`, `llv2`, `reach_only_llv2`): `(stage, role) -> handler`.
"""
