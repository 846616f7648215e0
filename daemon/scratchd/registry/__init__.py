"""OCI distribution client: auth, credentials, blob and manifest upload, retries."""
