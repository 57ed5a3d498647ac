"""The gateway: the one public door. Routes `/api/v1/...` to the owning service, keeps browser
and API sessions, signs the caller's identity for services, serves the web portal."""
