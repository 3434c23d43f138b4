"""The public RequisitionFulfillment server: EDPs upload their data for MPC requisitions."""
