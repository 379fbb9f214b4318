"""The node daemon: a device pool, the verify/profile API and self-registration with a gateway."""
