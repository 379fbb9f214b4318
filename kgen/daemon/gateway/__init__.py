"""The gateway daemon: REST API (app), admission and job runners (jobs), placement and retries
(scheduler), worker heartbeats (registry), event streams (stream), child-process generation
(generation), Prometheus metrics (metrics), and the Service that ties them together (server)."""
